"""One-call wiring of the security service into an aiohttp app.

    await prepare_schema(engine, feature_tables())            # the composition root creates the tables
    ctx = install(app, engine, clock, secure_cookies=False)   # before the app starts
    one_time = await ensure_first_admin(ctx)                   # print ONCE when not None

Owns the order of middlewares and the start-up check that every route has a matrix rule. Must never
create tables (the security tables are defined next to their queries and created by ``prepare_schema``)
and never print or log the first admin's one-time password: returning it is the caller's job.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.security import accounts, audit, sessions
from broadcast.security.context import SECURITY, SecurityContext
from broadcast.security.middleware import make_auth_middleware, make_security_headers_middleware
from broadcast.security.passwords import HashParams, Passwords
from broadcast.security.ratelimit import LockoutPolicy, LoginLimiter
from broadcast.security.roles import DEFAULT_MATRIX, RoleMatrix
from broadcast.security.routes import add_auth_routes

log = logging.getLogger(__name__)


def unruled_routes(app: web.Application, matrix: RoleMatrix) -> list[str]:
    """Registered routes that no matrix rule covers (they are refused): "METHOD /pattern" strings."""
    out: list[str] = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method == "HEAD":
            continue
        methods = ["GET"] if route.method == "*" else [route.method]
        for m in methods:
            if matrix.permission_for(m, resource.canonical) is None:
                out.append(f"{route.method} {resource.canonical}")
    return sorted(set(out))


def install(
    app: web.Application,
    engine: AsyncEngine,
    clock: Clock,
    *,
    matrix: RoleMatrix = DEFAULT_MATRIX,
    secure_cookies: bool = True,
    hash_params: HashParams | None = None,
    session_policy: sessions.SessionPolicy | None = None,
    lockout: LockoutPolicy | None = None,
    add_routes: bool = True,
) -> SecurityContext:
    """Add the security headers (outermost) and auth middlewares, the auth/admin routes, and the context
    at ``app[SECURITY]``. Call before the app is started. ``secure_cookies=False`` only for plain-http
    localhost."""
    ctx = SecurityContext(
        engine=engine,
        clock=clock,
        matrix=matrix,
        passwords=Passwords(hash_params),
        limiter=LoginLimiter(clock, lockout),
        ledger=audit.AuditLedger(engine, clock),
        session_policy=session_policy or sessions.SessionPolicy(),
        secure_cookies=secure_cookies,
    )
    app[SECURITY] = ctx
    app.middlewares.insert(0, make_security_headers_middleware(hsts=secure_cookies))
    app.middlewares.append(
        make_auth_middleware(
            engine, clock, matrix, secure_cookies=secure_cookies, session_policy=ctx.session_policy
        )
    )
    if add_routes:
        add_auth_routes(app)

    async def _check_matrix(app: web.Application) -> None:
        missing = unruled_routes(app, matrix)
        if missing:
            log.warning("routes without a role-matrix rule (all requests refused): %s", ", ".join(missing))

    app.on_startup.append(_check_matrix)
    return ctx


async def ensure_first_admin(ctx: SecurityContext) -> str | None:
    """Create "admin" with a one-time password when no account exists; the caller prints it ONCE."""
    one_time = await accounts.ensure_first_admin(ctx.engine, ctx.clock, ctx.passwords)
    if one_time is not None:
        await ctx.audit(
            audit.AuditAction.ACCOUNT_CREATED,
            actor="system",
            target=accounts.FIRST_ADMIN,
            detail={"roles": ["admin"], "first_admin": True},
        )
    return one_time
