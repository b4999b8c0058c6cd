"""A simulated county media centre (县级融媒体中心) on 127.0.0.1: receives the county's broadcast publications
(JSON, see broadcast.interconnect.media), checks each against the documented fields and records violations,
and submits programmes to the county's API. Levers: `go_offline()` / `go_online()` (503), `reject_next(n)`
(HTTP 500 for the next n publications).

Test and demo use only; the product never imports this module.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web

REQUIRED = {
    "schema": str,
    "id": str,
    "ebm_id": str,
    "msg_type": int,
    "event_type": str,
    "severity": int,
    "title": str,
    "text": str,
    "area_codes": list,
    "sent_at": str,
    "start_at": str,
    "end_at": str,
}


class MediaCentre:
    def __init__(self, *, path: str = "/publish") -> None:
        self._path = path
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port = 0
        self.offline = False
        self._reject = 0
        self.documents: dict[str, dict[str, Any]] = {}
        self.deliveries: Counter[str] = Counter()
        self.violations: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self._path}"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post(self._path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        return self.url

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    def go_offline(self) -> None:
        self.offline = True

    def go_online(self) -> None:
        self.offline = False

    def reject_next(self, n: int = 1) -> None:
        self._reject += n

    async def _handle(self, request: web.Request) -> web.Response:
        if self.offline:
            return web.Response(status=503)
        if self._reject:
            self._reject -= 1
            return web.Response(status=500)
        try:
            doc = json.loads(await request.read())
        except ValueError:
            self.violations.append("publication is not JSON")
            return web.json_response({"accepted": False}, status=400)
        for key, kind in REQUIRED.items():
            if not isinstance(doc.get(key), kind):
                self.violations.append(
                    f"publication {doc.get('id')}: field {key} missing or not {kind.__name__}"
                )
        for key in ("sent_at", "start_at", "end_at"):
            try:
                if datetime.fromisoformat(str(doc.get(key))).tzinfo is None:
                    self.violations.append(f"publication {doc.get('id')}: {key} has no time zone")
            except ValueError:
                self.violations.append(f"publication {doc.get('id')}: {key} is not ISO-8601")
        if request.headers.get("Idempotency-Key") is None:
            self.violations.append(f"publication {doc.get('id')}: no Idempotency-Key header")
        doc_id = str(doc.get("id"))
        self.deliveries[doc_id] += 1
        self.documents[doc_id] = doc
        return web.json_response({"accepted": True})

    async def submit_programme(
        self, county_url: str, doc: dict[str, Any], *, token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST a programme to the county (…/api/media/programmes); (HTTP status, JSON answer)."""
        assert self._session is not None, "start() first"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self._session.post(county_url, json=doc, headers=headers) as resp:
            return resp.status, await resp.json()
