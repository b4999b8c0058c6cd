"""aiohttp middlewares: who is calling (cookie session or bearer token), may they, and the security
headers on every response.

Owns request authentication, must-change-password enforcement, CSRF enforcement and the permission
check against the role matrix. Must never decide business questions (e.g. two-person approval) and
never echo a credential into a response or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web
from aiohttp.typedefs import Middleware
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.jsonhttp import json_error
from broadcast.security import accounts, csrf, sessions, tokens
from broadcast.security.roles import AUTHENTICATED, PUBLIC, Permission, Role, RoleMatrix, permissions_for

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PrincipalKind(StrEnum):
    USER = "user"
    TOKEN = "token"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    name: str  # username, or "token:<name>" for an API token
    account_id: int | None
    token_id: int | None
    roles: frozenset[Role]
    permissions: frozenset[Permission]
    must_change_password: bool
    session: sessions.Session | None

    def can(self, permission: str) -> bool:
        return permission in (PUBLIC, AUTHENTICATED) or permission in self.permissions


PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("ebc_principal", Principal)


def principal_of(request: web.Request) -> Principal | None:
    """The authenticated caller of this request, or None on a public route without credentials."""
    return request.get(PRINCIPAL)


class AuthErrorKind(StrEnum):
    UNAUTHENTICATED = "unauthenticated"
    INVALID_TOKEN = "invalid_token"
    FORBIDDEN = "forbidden"
    NOT_IN_MATRIX = "not_in_matrix"
    CSRF = "csrf_failed"
    PASSWORD_CHANGE_REQUIRED = "password_change_required"


_MESSAGES = {
    AuthErrorKind.UNAUTHENTICATED: "未登录或会话已过期，请重新登录",
    AuthErrorKind.INVALID_TOKEN: "API 令牌无效、已过期或已吊销，请向管理员申请新令牌",
    AuthErrorKind.FORBIDDEN: "当前账号没有执行此操作的权限（需要 {perm}），如需要请联系管理员分配角色",
    AuthErrorKind.NOT_IN_MATRIX: "该接口未在权限表中登记，已拒绝；请联系管理员",
    AuthErrorKind.CSRF: "缺少或错误的 CSRF 令牌（X-CSRF-Token 请求头），请刷新页面后重试",
    AuthErrorKind.PASSWORD_CHANGE_REQUIRED: "首次登录或密码已被重置，请先修改密码（POST /api/password）再继续操作",
}

_STATUS = {AuthErrorKind.UNAUTHENTICATED: 401, AuthErrorKind.INVALID_TOKEN: 401}

# The only routes a must-change-password user may use.
PASSWORD_CHANGE_ROUTES = frozenset({("POST", "/api/password"), ("POST", "/api/logout")})


def auth_error(kind: AuthErrorKind, **fmt: str) -> web.Response:
    resp = json_error(_STATUS.get(kind, 403), kind.value, _MESSAGES[kind].format(**fmt))
    if kind is AuthErrorKind.INVALID_TOKEN:
        resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return resp


def _route_pattern(request: web.Request) -> str | None:
    """The canonical pattern of the route aiohttp resolved, or None for 404/405 (nothing to protect)."""
    info = request.match_info
    if info.http_exception is not None:
        return None
    resource = info.route.resource
    return None if resource is None else resource.canonical


async def _authenticate(
    request: web.Request, engine: AsyncEngine, clock: Clock, policy: sessions.SessionPolicy
) -> Principal | AuthErrorKind | None:
    auth = request.headers.get("Authorization", "")
    if auth:
        scheme, _, secret = auth.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return AuthErrorKind.INVALID_TOKEN
        token = await tokens.resolve_token(engine, clock, secret.strip())
        if token is None:
            return AuthErrorKind.INVALID_TOKEN
        return Principal(
            PrincipalKind.TOKEN, f"token:{token.name}", None, token.id, frozenset(), token.scopes, False, None
        )
    cookie = request.cookies.get(sessions.COOKIE_NAME)
    if not cookie:
        return None
    session = await sessions.resolve_session(engine, clock, policy, cookie)
    if session is None:
        return AuthErrorKind.UNAUTHENTICATED
    account = await accounts.get_by_id(engine, session.account_id)
    if account is None or account.disabled:
        await sessions.delete_session(engine, session.token_hash)
        return AuthErrorKind.UNAUTHENTICATED
    return Principal(
        PrincipalKind.USER,
        account.username,
        account.id,
        None,
        account.roles,
        permissions_for(account.roles),
        account.must_change_password,
        session,
    )


def clear_cookie(resp: web.StreamResponse, *, secure: bool) -> None:
    resp.del_cookie(sessions.COOKIE_NAME, path="/", secure=secure, httponly=True, samesite="Strict")


def make_auth_middleware(
    engine: AsyncEngine,
    clock: Clock,
    matrix: RoleMatrix,
    *,
    secure_cookies: bool,
    session_policy: sessions.SessionPolicy | None = None,
) -> Middleware:
    """Authenticate (bearer header first, else the session cookie), then enforce must-change-password,
    CSRF (cookie sessions only, on mutating methods) and the matrix permission."""
    policy = session_policy or sessions.SessionPolicy()

    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        pattern = _route_pattern(request)
        if pattern is None:
            return await handler(request)
        required = matrix.permission_for(request.method, pattern)
        who = await _authenticate(request, engine, clock, policy)
        if required == PUBLIC:
            if isinstance(who, Principal):
                request[PRINCIPAL] = who
            return await handler(request)
        if who is None or isinstance(who, AuthErrorKind):
            kind = who or AuthErrorKind.UNAUTHENTICATED
            resp = auth_error(kind)
            if kind is AuthErrorKind.UNAUTHENTICATED and request.cookies.get(sessions.COOKIE_NAME):
                clear_cookie(resp, secure=secure_cookies)
            return resp
        if who.must_change_password and (request.method.upper(), pattern) not in PASSWORD_CHANGE_ROUTES:
            return auth_error(AuthErrorKind.PASSWORD_CHANGE_REQUIRED)
        if who.session is not None and csrf.needs_check(request.method):
            if not csrf.token_ok(who.session.csrf_token, request.headers.get(csrf.HEADER)):
                log.info("CSRF refused for %s on %s %s", who.name, request.method, pattern)
                return auth_error(AuthErrorKind.CSRF)
        if required is None:
            log.warning("route %s %s is not in the role matrix: refused", request.method, pattern)
            return auth_error(AuthErrorKind.NOT_IN_MATRIX)
        if not who.can(required):
            log.info("permission %s refused for %s on %s %s", required, who.name, request.method, pattern)
            return auth_error(AuthErrorKind.FORBIDDEN, perm=required)
        request[PRINCIPAL] = who
        return await handler(request)

    return auth_middleware


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; object-src 'none'"
)


def make_security_headers_middleware(*, hsts: bool = False) -> Middleware:
    """Headers on every response, errors included. ``hsts`` only when served over https."""
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
    }
    if hsts:
        headers["Strict-Transport-Security"] = "max-age=31536000"

    def apply(request: web.Request, resp: web.StreamResponse) -> None:
        if resp.prepared:
            return  # streamed responses already sent their headers (set them before prepare)
        for k, v in headers.items():
            resp.headers.setdefault(k, v)
        if request.path.startswith("/api/"):
            resp.headers.setdefault("Cache-Control", "no-store")

    @web.middleware
    async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            apply(request, exc)
            raise
        apply(request, resp)
        return resp

    return security_headers
