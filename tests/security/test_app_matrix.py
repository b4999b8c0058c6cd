"""The controller's real app: every route it registers has a role-matrix rule, and the rules it adds
beyond the security module's defaults give each role exactly what it should."""

from __future__ import annotations

from pathlib import Path

import pytest

from broadcast.app.controller import Controller
from broadcast.app.web import MATRIX
from broadcast.security.install import unruled_routes
from broadcast.security.roles import PUBLIC, Role, permissions_for
from tests.e2e.conftest import settings_for

OP, AP, AD, AU = Role.OPERATOR, Role.APPROVER, Role.ADMIN, Role.AUDITOR


async def test_every_route_of_the_app_has_a_rule(tmp_path: Path) -> None:
    controller = await Controller.create(settings_for(tmp_path))
    try:
        assert unruled_routes(controller.app, MATRIX) == []
    finally:
        await controller.close()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/api/broadcasts/{id}/approve", {AP}),
        ("POST", "/api/broadcasts/{id}/reject", {AP}),
        ("POST", "/api/broadcasts/{id}/release", {OP}),
        ("POST", "/api/broadcasts/{id}/stop", {OP, AP}),
        ("POST", "/api/messages", {OP}),
        ("POST", "/api/audio", {OP}),
        ("POST", "/api/preview", {OP}),
        ("POST", "/api/alerts", set()),  # machine sources only (token scope alerts:submit)
        ("GET", "/api/pending", {OP, AP, AD, AU}),
        ("GET", "/api/broadcasts/{id}/decisions", {OP, AP, AD, AU}),
        ("POST", "/api/reports/health", {OP, AP, AD, AU}),
    ],
)
def test_role_per_extra_rule(method: str, path: str, allowed: set[Role]) -> None:
    needed = MATRIX.permission_for(method, path)
    assert needed is not None and needed != PUBLIC
    got = {role for role in Role if needed in permissions_for([role])}
    assert got == allowed, (method, path, needed)


def test_upper_platform_endpoint_is_public_but_signature_checked() -> None:
    assert MATRIX.permission_for("POST", "/ebd") == PUBLIC
