"""The whole web app built from hand-made parts (no ``Controller``): it serves requests, its errors keep
Chinese readable, and the console's live board hears the event bus it was given."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from broadcast.app.web import WebParts, make_app
from broadcast.events import LinkChanged
from broadcast.model import LinkState
from broadcast.security import accounts
from broadcast.security.passwords import Passwords
from broadcast.security.roles import Role
from tests.web.conftest import NOW

Client = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
PASSWORD = "Wang-Passw0rd-2026"


async def logged_in(parts: WebParts, aiohttp_client: Client) -> TestClient[Any, Any]:
    await accounts.create_account(
        parts.engine, parts.clock, Passwords(None), "wang.wu", {Role.OPERATOR}, PASSWORD
    )
    client = await aiohttp_client(make_app(parts))
    resp = await client.post("/api/login", json={"username": "wang.wu", "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    return client


async def test_the_app_needs_no_controller(web_parts: WebParts, aiohttp_client: Client) -> None:
    client = await logged_in(web_parts, aiohttp_client)
    health = await client.get("/healthz")
    assert health.status == 200
    assert await health.json() == {"ok": True, "links": web_parts.links.counts(), "adapters": []}
    street = web_parts.inventory.children(web_parts.inventory.county.code)[0].code
    terminals = await (await client.get(f"/api/terminals?area={street}")).json()
    assert terminals["count"] == len(web_parts.inventory.resolve([street])) > 0
    assert (await (await client.get("/api/pending")).json()) == {"pending": []}
    assert (await (await client.get("/api/sources")).json()) == {"feeds": []}


async def test_errors_keep_chinese_readable(web_parts: WebParts, aiohttp_client: Client) -> None:
    client = await aiohttp_client(make_app(web_parts))
    refused = await client.post("/api/login", json={"username": "nobody", "password": "wrong-password-1"})
    assert refused.status == 401
    assert json.loads(await refused.text()) == {
        "error": "bad_credentials",
        "message": "用户名或密码错误，请检查后重试",
    }
    assert "用户名或密码错误" in await refused.text()  # not \\u-escaped
    missing = await client.get("/audio/live/not-an-id.mp3")
    assert missing.status == 404 and "直播音频不存在" in await missing.text()


async def test_the_live_board_hears_the_bus_it_was_given(web_parts: WebParts, aiohttp_client: Client) -> None:
    client = await logged_in(web_parts, aiohttp_client)
    code = web_parts.inventory.terminals[0].resource_code
    async with client.get("/api/events") as stream:
        assert stream.status == 200
        assert (await stream.content.readuntil(b"\n\n")).endswith(b"event: hello\ndata: {}\n\n")
        web_parts.events.emit(LinkChanged(code, LinkState.ONLINE, None, NOW))
        async with asyncio.timeout(5):
            block = (await stream.content.readuntil(b"\n\n")).decode()
    event, data = block.strip().split("\n")
    assert event == "event: update"
    assert json.loads(data.removeprefix("data: "))["links"] == {code: "online"}
