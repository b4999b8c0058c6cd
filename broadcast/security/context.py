"""The security service's shared parts for one web app, kept in ``app[SECURITY]``.

Owns nothing but the bundle; must never hold per-request state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.security import audit
from broadcast.security.middleware import principal_of
from broadcast.security.passwords import Passwords
from broadcast.security.ratelimit import LoginLimiter
from broadcast.security.roles import RoleMatrix
from broadcast.security.sessions import SessionPolicy


@dataclass
class SecurityContext:
    engine: AsyncEngine
    clock: Clock
    matrix: RoleMatrix
    passwords: Passwords
    limiter: LoginLimiter
    ledger: audit.AuditLedger
    session_policy: SessionPolicy = field(default_factory=SessionPolicy)
    secure_cookies: bool = True

    async def audit(
        self,
        action: audit.AuditAction,
        *,
        actor: str,
        remote: str = "",
        target: str = "",
        detail: dict[str, Any] | None = None,
    ) -> audit.AuditEntry:
        return await self.ledger.append(action, actor=actor, remote=remote, target=target, detail=detail)


SECURITY: web.AppKey[SecurityContext] = web.AppKey("ebc_security", SecurityContext)


async def audit_request(
    request: web.Request, action: audit.AuditAction, *, target: str = "", detail: dict[str, Any] | None = None
) -> audit.AuditEntry:
    """Append an entry for an action done in this request: actor and remote address come from the
    authenticated principal and the connection. For handlers of other components (approve, stop, ...)."""
    who = principal_of(request)
    return await request.app[SECURITY].audit(
        action,
        actor=who.name if who else "anonymous",
        remote=request.remote or "",
        target=target,
        detail=detail,
    )
