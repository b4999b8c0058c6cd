"""HTTP endpoints of the security service: login, logout, password change, "who am I", and the admin
endpoints for accounts, API tokens and the audit ledger.

    POST /api/login                          {username, password} → session cookie + csrf_token
    POST /api/logout
    POST /api/password                       {current_password, new_password}
    GET  /api/me
    GET  /api/users | POST /api/users        {username, roles[]} → one_time_password (shown once)
    POST /api/users/{username}/roles         {roles[]}
    POST /api/users/{username}/disable       {disabled: bool}
    POST /api/users/{username}/reset-password → one_time_password (shown once)
    GET  /api/tokens | POST /api/tokens      {name, scopes[], valid_days?} → token (shown once)
    POST /api/tokens/{id}/revoke
    GET  /api/audit?limit=&before=           GET /api/audit/verify

Handlers stay thin; every action is appended to the audit ledger. Must never put a password or token
into a log line or the ledger, and never say whether a username exists on a failed login.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from aiohttp import web

from broadcast.jsonhttp import json_error, json_response
from broadcast.security import accounts, sessions, tokens
from broadcast.security import audit as audit_mod
from broadcast.security.audit import AuditAction
from broadcast.security.context import SECURITY, SecurityContext
from broadcast.security.middleware import PRINCIPAL, Principal, PrincipalKind, clear_cookie
from broadcast.security.passwords import PasswordPolicyError, generate_one_time_password
from broadcast.security.roles import Role, parse_roles, permissions_for

log = logging.getLogger(__name__)


class BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise BadRequest("请求体必须是 JSON 对象") from None
    if not isinstance(data, dict):
        raise BadRequest("请求体必须是 JSON 对象")
    return data


def _str_field(data: dict[str, Any], name: str) -> str:
    v = data.get(name)
    if not isinstance(v, str) or not v:
        raise BadRequest(f"缺少字段 {name}（字符串）")
    return v


def _list_field(data: dict[str, Any], name: str) -> list[str]:
    v = data.get(name)
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise BadRequest(f"缺少字段 {name}（字符串数组）")
    return list(v)


def _ctx(request: web.Request) -> SecurityContext:
    return request.app[SECURITY]


def _me(request: web.Request) -> Principal:
    return request[PRINCIPAL]  # the middleware guarantees it on non-public routes


def _remote(request: web.Request) -> str:
    return request.remote or ""


def _me_json(p: Principal) -> dict[str, Any]:
    out: dict[str, Any] = {
        "username": p.name,
        "kind": p.kind.value,
        "roles": sorted(r.value for r in p.roles),
        "permissions": sorted(x.value for x in p.permissions),
        "must_change_password": p.must_change_password,
    }
    if p.session is not None:
        out["csrf_token"] = p.session.csrf_token
    return out


async def login(request: web.Request) -> web.Response:
    ctx = _ctx(request)
    data = await _body(request)
    username, password, remote = _str_field(data, "username"), _str_field(data, "password"), _remote(request)
    locked = ctx.limiter.check(username, remote)
    if locked is not None:
        await ctx.audit(
            AuditAction.LOGIN_LOCKED,
            actor=username[:64],
            remote=remote,
            target=username[:64],
            detail={"scope": locked.scope.value, "retry_after_s": locked.retry_after_s},
        )
        minutes = max(1, (locked.retry_after_s + 59) // 60)
        resp = json_error(
            429,
            "locked",
            f"登录失败次数过多，已暂时锁定，请 {minutes} 分钟后再试",
            retry_after_s=locked.retry_after_s,
        )
        resp.headers["Retry-After"] = str(locked.retry_after_s)
        return resp
    account = await accounts.get_by_username(ctx.engine, username)
    ok = await ctx.passwords.verify(account.password_hash if account else None, password)
    if not ok or account is None or account.disabled:
        reason = "disabled" if ok and account is not None else "bad_credentials"
        triggered = ctx.limiter.record_failure(username, remote)
        detail: dict[str, Any] = {"reason": reason}
        if triggered is not None:
            detail["locked"] = triggered.scope.value
        await ctx.audit(
            AuditAction.LOGIN_FAILED, actor=username[:64], remote=remote, target=username[:64], detail=detail
        )
        if reason == "disabled":
            return json_error(403, "account_disabled", "该账号已停用，请联系管理员")
        return json_error(401, "bad_credentials", "用户名或密码错误，请检查后重试")
    ctx.limiter.record_success(username)
    if ctx.passwords.needs_rehash(account.password_hash):
        await accounts.rehash(ctx.engine, account.id, await ctx.passwords.hash(password))
    token, session = await sessions.create_session(ctx.engine, ctx.clock, account.id, remote)
    await ctx.audit(AuditAction.LOGIN, actor=account.username, remote=remote, target=account.username)
    who = Principal(
        PrincipalKind.USER,
        account.username,
        account.id,
        None,
        account.roles,
        permissions_for(account.roles),
        account.must_change_password,
        session,
    )
    resp = json_response(_me_json(who))
    resp.set_cookie(
        sessions.COOKIE_NAME, token, path="/", secure=ctx.secure_cookies, httponly=True, samesite="Strict"
    )
    return resp


async def logout(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    if me.session is not None:
        await sessions.delete_session(ctx.engine, me.session.token_hash)
        await ctx.audit(AuditAction.LOGOUT, actor=me.name, remote=_remote(request), target=me.name)
    resp = json_response({"ok": True})
    clear_cookie(resp, secure=ctx.secure_cookies)
    return resp


async def change_password(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    if me.kind is not PrincipalKind.USER or me.account_id is None:
        return json_error(400, "not_a_user", "API 令牌没有密码，无需修改")
    data = await _body(request)
    current, new = _str_field(data, "current_password"), _str_field(data, "new_password")
    remote = _remote(request)
    locked = ctx.limiter.check(me.name, remote)
    if locked is not None:
        return json_error(
            429, "locked", "密码错误次数过多，已暂时锁定，请稍后再试", retry_after_s=locked.retry_after_s
        )
    account = await accounts.get_by_id(ctx.engine, me.account_id)
    if account is None or not await ctx.passwords.verify(account.password_hash, current):
        ctx.limiter.record_failure(me.name, remote)
        return json_error(403, "bad_current_password", "当前密码不正确，请重新输入")
    if current == new:
        return json_error(400, "password_unchanged", "新密码不能与当前密码相同，请换一个密码")
    try:
        await accounts.set_password(ctx.engine, ctx.clock, ctx.passwords, account, new)
    except PasswordPolicyError as exc:
        return json_error(400, f"password_{exc.violation.value}", exc.message)
    # Every other session of this account ends: whoever knew the old password is out.
    keep = me.session.token_hash if me.session else None
    ended = await sessions.delete_sessions_of(ctx.engine, account.id, keep=keep)
    await ctx.audit(
        AuditAction.PASSWORD_CHANGED,
        actor=me.name,
        remote=remote,
        target=me.name,
        detail={"other_sessions_ended": ended, "was_one_time": account.must_change_password},
    )
    return json_response({"ok": True})


async def get_me(request: web.Request) -> web.Response:
    return json_response(_me_json(_me(request)))


# --- accounts (admin) ------------------------------------------------------------------------------


async def list_users(request: web.Request) -> web.Response:
    return json_response(
        {"users": [a.public_json() for a in await accounts.list_accounts(_ctx(request).engine)]}
    )


def _roles(data: dict[str, Any]) -> frozenset[Role]:
    try:
        return parse_roles(_list_field(data, "roles"))
    except ValueError as exc:
        raise BadRequest(f"角色无效：{exc}；可选 operator、approver、admin、auditor") from None


async def create_user(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    data = await _body(request)
    username, roles = _str_field(data, "username"), _roles(data)
    try:
        account, one_time = await accounts.create_account(
            ctx.engine, ctx.clock, ctx.passwords, username, roles
        )
    except accounts.AccountError as exc:
        return json_error(
            409 if exc.kind is accounts.AccountErrorKind.EXISTS else 400, exc.kind.value, exc.message
        )
    await ctx.audit(
        AuditAction.ACCOUNT_CREATED,
        actor=me.name,
        remote=_remote(request),
        target=username,
        detail={"roles": sorted(r.value for r in roles)},
    )
    return json_response({"user": account.public_json(), "one_time_password": one_time}, status=201)


def _self_guard(me: Principal, username: str) -> web.Response | None:
    if me.name == username:
        return json_error(409, "self_change", "不能停用自己或修改自己的角色，请由另一位管理员操作")
    return None


async def set_user_roles(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    username = request.match_info["username"]
    if (refused := _self_guard(me, username)) is not None:
        return refused
    roles = _roles(await _body(request))
    try:
        await accounts.set_roles(ctx.engine, username, roles)
    except accounts.AccountError as exc:
        return json_error(
            404 if exc.kind is accounts.AccountErrorKind.NOT_FOUND else 400, exc.kind.value, exc.message
        )
    await ctx.audit(
        AuditAction.ACCOUNT_CHANGED,
        actor=me.name,
        remote=_remote(request),
        target=username,
        detail={"roles": sorted(r.value for r in roles)},
    )
    return json_response({"ok": True})


async def disable_user(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    username = request.match_info["username"]
    if (refused := _self_guard(me, username)) is not None:
        return refused
    disabled = (await _body(request)).get("disabled", True)
    if not isinstance(disabled, bool):
        raise BadRequest("字段 disabled 必须是 true 或 false")
    account = await accounts.get_by_username(ctx.engine, username)
    if account is None:
        return json_error(404, "not_found", "找不到该用户，请检查用户名")
    await accounts.set_disabled(ctx.engine, username, disabled)
    if disabled:
        await sessions.delete_sessions_of(ctx.engine, account.id)
    await ctx.audit(
        AuditAction.ACCOUNT_CHANGED,
        actor=me.name,
        remote=_remote(request),
        target=username,
        detail={"disabled": disabled},
    )
    return json_response({"ok": True})


async def reset_password(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    username = request.match_info["username"]
    account = await accounts.get_by_username(ctx.engine, username)
    if account is None:
        return json_error(404, "not_found", "找不到该用户，请检查用户名")
    one_time = generate_one_time_password()
    await accounts.set_password(ctx.engine, ctx.clock, ctx.passwords, account, one_time, must_change=True)
    await sessions.delete_sessions_of(ctx.engine, account.id)
    await ctx.audit(
        AuditAction.ACCOUNT_CHANGED,
        actor=me.name,
        remote=_remote(request),
        target=username,
        detail={"password_reset": True},
    )
    return json_response({"one_time_password": one_time})


# --- API tokens (admin) ----------------------------------------------------------------------------


async def list_api_tokens(request: web.Request) -> web.Response:
    return json_response(
        {"tokens": [t.public_json() for t in await tokens.list_tokens(_ctx(request).engine)]}
    )


async def create_api_token(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    data = await _body(request)
    name, scopes = _str_field(data, "name"), _list_field(data, "scopes")
    days = data.get("valid_days")
    if days is not None and (not isinstance(days, int) or isinstance(days, bool) or days <= 0):
        raise BadRequest("字段 valid_days 必须是正整数（天）")
    try:
        secret, token = await tokens.create_token(
            ctx.engine, ctx.clock, name, scopes, me.name, timedelta(days=days) if days else None
        )
    except tokens.TokenScopeError as exc:
        return json_error(400, "bad_scope", exc.message)
    await ctx.audit(
        AuditAction.TOKEN_CREATED,
        actor=me.name,
        remote=_remote(request),
        target=str(token.id),
        detail={"name": token.name, "scopes": sorted(s.value for s in token.scopes)},
    )
    return json_response({"token": secret, "info": token.public_json()}, status=201)


async def revoke_api_token(request: web.Request) -> web.Response:
    ctx, me = _ctx(request), _me(request)
    try:
        token_id = int(request.match_info["id"])
    except ValueError:
        raise BadRequest("令牌 id 必须是整数") from None
    if not await tokens.revoke_token(ctx.engine, ctx.clock, token_id):
        return json_error(404, "not_found", f"找不到未吊销的令牌 {token_id}")
    await ctx.audit(AuditAction.TOKEN_REVOKED, actor=me.name, remote=_remote(request), target=str(token_id))
    return json_response({"ok": True})


# --- audit ledger (auditor) ------------------------------------------------------------------------


async def get_audit(request: web.Request) -> web.Response:
    try:
        limit = int(request.query.get("limit", "100"))
        before = int(request.query["before"]) if "before" in request.query else None
    except ValueError:
        raise BadRequest("limit 与 before 必须是整数") from None
    entries = await audit_mod.tail(_ctx(request).engine, limit, before_seq=before)
    return json_response({"entries": [e.as_json() for e in entries]})


async def get_audit_verify(request: web.Request) -> web.Response:
    report = await audit_mod.verify(_ctx(request).engine)
    return json_response(report.as_json())


def _wrap(handler: Any) -> Any:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            resp: web.StreamResponse = await handler(request)
            return resp
        except BadRequest as exc:
            return json_error(400, "bad_request", exc.message)

    wrapped.__name__ = handler.__name__
    return wrapped


def add_auth_routes(app: web.Application) -> None:
    """Register the endpoints above. ``app[SECURITY]`` must be set (``install`` does both)."""
    r = app.router
    r.add_post("/api/login", _wrap(login))
    r.add_post("/api/logout", _wrap(logout))
    r.add_post("/api/password", _wrap(change_password))
    r.add_get("/api/me", _wrap(get_me))
    r.add_get("/api/users", _wrap(list_users))
    r.add_post("/api/users", _wrap(create_user))
    r.add_post("/api/users/{username}/roles", _wrap(set_user_roles))
    r.add_post("/api/users/{username}/disable", _wrap(disable_user))
    r.add_post("/api/users/{username}/reset-password", _wrap(reset_password))
    r.add_get("/api/tokens", _wrap(list_api_tokens))
    r.add_post("/api/tokens", _wrap(create_api_token))
    r.add_post("/api/tokens/{id}/revoke", _wrap(revoke_api_token))
    r.add_get("/api/audit", _wrap(get_audit))
    r.add_get("/api/audit/verify", _wrap(get_audit_verify))
