"""Roles, permissions and the role matrix: the one declarative table saying which permission each
(method, route) needs.

Owns the mapping role → permissions and (method, route pattern) → permission. Must never touch the
database or the request; the middleware asks it questions.

The matrix format (for adding endpoints)
-----------------------------------------
A matrix is an ordered tuple of ``Rule(method, pattern, permission)``; the FIRST rule that matches wins,
so put specific rows before catch-alls such as ``Rule("GET", "/api/*", READ)``.

* ``method``: an HTTP method ("GET", "POST", ...) or "*" for any. HEAD is checked as GET.
* ``pattern``: the route as registered with aiohttp, e.g. "/api/broadcasts/{id}/stop". Placeholder names
  do not matter ("{id}" equals "{bid}"). A final "/*" matches that prefix and everything below it
  ("/audio/*" covers the route "/audio/{name}", "/static/*" covers a static resource at "/static").
* ``permission``: a ``Permission`` value, or ``PUBLIC`` (no login) or ``AUTHENTICATED`` (any logged-in
  principal).

Rules are matched against the route aiohttp resolved (its canonical pattern), never the raw path, so
percent-encoding tricks cannot select a weaker rule. A registered route with no matching rule is refused
(default deny); ``unruled_routes(app, matrix)`` lists such routes, and ``install`` logs them at start.

Example for new endpoints::

    MATRIX = DEFAULT_MATRIX.with_rules(
        Rule("POST", "/api/drills", Permission.MESSAGES_SUBMIT),
    )
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    OPERATOR = "operator"  # 操作员: compose and submit messages
    APPROVER = "approver"  # 审核员: approve or reject messages composed by others
    ADMIN = "admin"  # 管理员: accounts and configuration
    AUDITOR = "auditor"  # 审计员: read everything including the audit ledger, change nothing


class Permission(StrEnum):
    READ = "read"
    MESSAGES_COMPOSE = "messages:compose"
    MESSAGES_SUBMIT = "messages:submit"
    MESSAGES_APPROVE = "messages:approve"
    ALERTS_SUBMIT = "alerts:submit"
    BROADCAST_STOP = "broadcast:stop"
    ACCOUNTS_MANAGE = "accounts:manage"
    CONFIG_MANAGE = "config:manage"
    AUDIT_READ = "audit:read"


PUBLIC = "public"
AUTHENTICATED = "authenticated"

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.OPERATOR: frozenset(
        {Permission.READ, Permission.MESSAGES_COMPOSE, Permission.MESSAGES_SUBMIT, Permission.BROADCAST_STOP}
    ),
    Role.APPROVER: frozenset({Permission.READ, Permission.MESSAGES_APPROVE, Permission.BROADCAST_STOP}),
    Role.ADMIN: frozenset({Permission.READ, Permission.ACCOUNTS_MANAGE, Permission.CONFIG_MANAGE}),
    Role.AUDITOR: frozenset({Permission.READ, Permission.AUDIT_READ}),
}

# Scopes an API token (machine source) may carry. Tokens never get account or configuration powers.
TOKEN_SCOPES: frozenset[Permission] = frozenset(
    {Permission.ALERTS_SUBMIT, Permission.MESSAGES_SUBMIT, Permission.READ}
)


def permissions_for(roles: Iterable[Role]) -> frozenset[Permission]:
    out: set[Permission] = set()
    for role in roles:
        out |= ROLE_PERMISSIONS[role]
    return frozenset(out)


def parse_roles(values: Iterable[str]) -> frozenset[Role]:
    """Roles from strings; raises ValueError naming the unknown role."""
    out: set[Role] = set()
    for v in values:
        try:
            out.add(Role(v))
        except ValueError:
            raise ValueError(f"unknown role {v!r}; known: {', '.join(r.value for r in Role)}") from None
    return frozenset(out)


_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def _normalise(pattern: str) -> str:
    # "{id}", "{name:.*}" → "{}"; strip a trailing slash except for the root.
    p = _PLACEHOLDER.sub("{}", pattern)
    return p.rstrip("/") or "/"


@dataclass(frozen=True)
class Rule:
    method: str
    pattern: str
    permission: str

    def matches(self, method: str, route_pattern: str) -> bool:
        m = "GET" if method.upper() == "HEAD" else method.upper()
        if self.method != "*" and self.method.upper() != m:
            return False
        route = _normalise(route_pattern)
        if self.pattern.endswith("/*"):
            prefix = _normalise(self.pattern[:-2])
            return route == prefix or route.startswith(prefix.rstrip("/") + "/")
        return route == _normalise(self.pattern)


@dataclass(frozen=True)
class RoleMatrix:
    rules: tuple[Rule, ...]

    def permission_for(self, method: str, route_pattern: str) -> str | None:
        """The permission the first matching rule demands, or None (deny) when no rule matches."""
        for rule in self.rules:
            if rule.matches(method, route_pattern):
                return rule.permission
        return None

    def with_rules(self, *rules: Rule) -> RoleMatrix:
        """A new matrix with ``rules`` placed BEFORE the existing ones (so they take precedence)."""
        return RoleMatrix((*rules, *self.rules))


def public_rules() -> tuple[Rule, ...]:
    return (
        Rule("GET", "/", PUBLIC),  # console shell / login page: holds no data, the API does
        Rule("GET", "/login", PUBLIC),
        Rule("GET", "/static/*", PUBLIC),
        Rule("GET", "/healthz", PUBLIC),
        Rule("GET", "/audio/*", PUBLIC),  # terminals fetch programme audio without logging in
        Rule("POST", "/api/login", PUBLIC),
    )


DEFAULT_MATRIX = RoleMatrix(
    (
        *public_rules(),
        # Session endpoints (must-change-password users may reach only POST /api/password and logout).
        Rule("POST", "/api/logout", AUTHENTICATED),
        Rule("POST", "/api/password", AUTHENTICATED),
        Rule("GET", "/api/me", AUTHENTICATED),
        # Accounts and API tokens.
        Rule("*", "/api/users", Permission.ACCOUNTS_MANAGE),
        Rule("*", "/api/users/*", Permission.ACCOUNTS_MANAGE),
        Rule("*", "/api/tokens", Permission.ACCOUNTS_MANAGE),
        Rule("*", "/api/tokens/*", Permission.ACCOUNTS_MANAGE),
        # Audit ledger.
        Rule("GET", "/api/audit", Permission.AUDIT_READ),
        Rule("GET", "/api/audit/*", Permission.AUDIT_READ),
        # Configuration.
        Rule("GET", "/api/config", Permission.READ),
        Rule("*", "/api/config", Permission.CONFIG_MANAGE),
        Rule("*", "/api/config/*", Permission.CONFIG_MANAGE),
        # Alerts and messages.
        Rule("POST", "/api/alerts", Permission.ALERTS_SUBMIT),
        Rule("POST", "/api/messages", Permission.MESSAGES_SUBMIT),
        Rule("PUT", "/api/messages/{id}", Permission.MESSAGES_COMPOSE),
        Rule("POST", "/api/messages/{id}/submit", Permission.MESSAGES_SUBMIT),
        Rule("POST", "/api/messages/{id}/approve", Permission.MESSAGES_APPROVE),
        Rule("POST", "/api/messages/{id}/reject", Permission.MESSAGES_APPROVE),
        Rule("POST", "/api/broadcasts/{id}/stop", Permission.BROADCAST_STOP),
        # Everything else under /api that only reads.
        Rule("GET", "/api/*", Permission.READ),
    )
)
