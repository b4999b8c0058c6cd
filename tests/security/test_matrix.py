"""The role matrix, exercised over HTTP for every role × every route, plus anonymous callers."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from broadcast.security.roles import DEFAULT_MATRIX, Role
from tests.security.conftest import login, make_user

OP, AP, AD, AU = Role.OPERATOR, Role.APPROVER, Role.ADMIN, Role.AUDITOR
ALL = frozenset(Role)
PUBLIC = "public"

# (method, concrete path, registered pattern, roles allowed | PUBLIC). Written by hand from the brief:
# this is the specification the matrix must implement, not a copy of it.
CASES: list[tuple[str, str, str, frozenset[Role] | str]] = [
    ("GET", "/", "/", PUBLIC),
    ("GET", "/login", "/login", PUBLIC),
    ("GET", "/static/app.js", "/static", PUBLIC),
    ("GET", "/healthz", "/healthz", PUBLIC),
    ("GET", "/audio/abc.mp3", "/audio/{name}", PUBLIC),
    ("POST", "/api/password", "/api/password", ALL),
    ("GET", "/api/me", "/api/me", ALL),
    ("GET", "/api/users", "/api/users", frozenset({AD})),
    ("POST", "/api/users/bob/roles", "/api/users/{username}/roles", frozenset({AD})),
    ("GET", "/api/tokens", "/api/tokens", frozenset({AD})),
    ("POST", "/api/tokens/999/revoke", "/api/tokens/{id}/revoke", frozenset({AD})),
    ("GET", "/api/audit", "/api/audit", frozenset({AU})),
    ("GET", "/api/audit/verify", "/api/audit/verify", frozenset({AU})),
    ("GET", "/api/config", "/api/config", ALL),
    ("PUT", "/api/config", "/api/config", frozenset({AD})),
    ("PUT", "/api/config/dispatch", "/api/config/{section}", frozenset({AD})),
    ("POST", "/api/alerts", "/api/alerts", frozenset()),  # machine sources only (token scope)
    ("POST", "/api/messages", "/api/messages", frozenset({OP})),
    ("PUT", "/api/messages/7", "/api/messages/{id}", frozenset({OP})),
    ("POST", "/api/messages/7/submit", "/api/messages/{id}/submit", frozenset({OP})),
    ("POST", "/api/messages/7/approve", "/api/messages/{id}/approve", frozenset({AP})),
    ("POST", "/api/messages/7/reject", "/api/messages/{id}/reject", frozenset({AP})),
    ("POST", "/api/broadcasts/7/stop", "/api/broadcasts/{id}/stop", frozenset({OP, AP})),
    ("GET", "/api/broadcasts", "/api/broadcasts", ALL),
    ("GET", "/api/broadcasts/7", "/api/broadcasts/{id}", ALL),
    ("GET", "/api/terminals", "/api/terminals", ALL),
    ("DELETE", "/api/broadcasts/7", "/api/broadcasts/{id}", frozenset()),  # no rule: default deny
]


def _first_rule_index(method: str, pattern: str) -> int | None:
    for i, rule in enumerate(DEFAULT_MATRIX.rules):
        if rule.matches(method, pattern):
            return i
    return None


def test_every_matrix_rule_is_exercised() -> None:
    hit = {_first_rule_index(m, pat) for m, _, pat, _ in CASES}
    # POST /api/login and POST /api/logout are exercised in test_sessions.
    hit |= {_first_rule_index("POST", "/api/login"), _first_rule_index("POST", "/api/logout")}
    missed = [r for i, r in enumerate(DEFAULT_MATRIX.rules) if i not in hit]
    assert not missed


async def _send(client: TestClient[Any, Any], method: str, path: str, csrf: str | None) -> int:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    resp = await client.request(method, path, headers=headers, json={})
    await resp.read()
    return resp.status


@pytest.mark.parametrize("role", list(Role))
async def test_role_against_every_route(app_client: TestClient[Any, Any], role: Role) -> None:
    await make_user(app_client, f"user-{role.value}", role)
    csrf = await login(app_client, f"user-{role.value}")
    wrong: list[str] = []
    for method, path, _, allowed in CASES:
        status = await _send(app_client, method, path, csrf)
        expect_ok = allowed == PUBLIC or (not isinstance(allowed, str) and role in allowed)
        got_ok = status not in (401, 403)
        if expect_ok != got_ok:
            wrong.append(f"{role} {method} {path}: {status}")
        if not expect_ok:
            assert status == 403, (method, path, status)
    assert not wrong


async def test_anonymous_gets_401_except_public(app_client: TestClient[Any, Any]) -> None:
    for method, path, _, allowed in CASES:
        status = await _send(app_client, method, path, None)
        if allowed == PUBLIC:
            assert status == 200, (method, path, status)
        else:
            assert status == 401, (method, path, status)


async def test_several_roles_union(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "duty", Role.OPERATOR, Role.APPROVER)
    csrf = await login(app_client, "duty")
    assert await _send(app_client, "POST", "/api/messages", csrf) == 200
    assert await _send(app_client, "POST", "/api/messages/3/approve", csrf) == 200
    assert await _send(app_client, "GET", "/api/audit", csrf) == 403


async def test_refusal_is_chinese_json(app_client: TestClient[Any, Any]) -> None:
    await make_user(app_client, "aud", Role.AUDITOR)
    csrf = await login(app_client, "aud")
    resp = await app_client.post("/api/messages", headers={"X-CSRF-Token": csrf}, json={})
    body = await resp.json()
    assert resp.status == 403
    assert body["error"] == "forbidden"
    assert "权限" in body["message"] and "messages:submit" in body["message"]


def test_unruled_routes_lists_default_denied() -> None:
    from aiohttp import web

    from broadcast.security.install import unruled_routes
    from broadcast.security.roles import Permission, Rule

    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    app = web.Application()
    for method, path in [("GET", "/api/broadcasts"), ("DELETE", "/api/broadcasts/{id}"), ("PATCH", "/api/x")]:
        app.router.add_route(method, path, handler)
    assert unruled_routes(app, DEFAULT_MATRIX) == ["DELETE /api/broadcasts/{id}", "PATCH /api/x"]
    extended = DEFAULT_MATRIX.with_rules(Rule("PATCH", "/api/x", Permission.CONFIG_MANAGE))
    assert unruled_routes(app, extended) == ["DELETE /api/broadcasts/{id}"]
