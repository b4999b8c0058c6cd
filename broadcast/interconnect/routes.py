"""The upper-platform service on the controller's aiohttp application: `install_interconnect(app, facade, …)`
adds its routes and the start/stop of its parts to an app the composition root (`broadcast.app`) owns.

Routes
  POST {ebd_path}                    EBD packets from upper platforms (multipart field "file", or a raw
                                     application/x-tar body); answers with a signed EBDResponse tar
  POST /api/media/programmes         programme submissions from the media centre (JSON, optional bearer token)
  GET  /api/media/programmes         submissions, ?status=pending|approved|rejected
  GET  /api/interconnect/status      upper link states and outbox counts
JSON answers and errors take the product's one shape (`broadcast.jsonhttp`). On app start-up the parts are
built — the outbox, the receiver, the upper link (heartbeats, periodic reports), the broadcast reporter
and the media publisher — over the one injected `aiohttp.ClientSession`; their loops stop with the app.

Must never implement protocol rules itself (upper.py, link.py, outbox.py, media.py do), open or close an
HTTP session (the caller owns it), or create tables (the composition root's `prepare_schema` does).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.interconnect import media
from broadcast.interconnect.ebd.ids import EbdIdAllocator
from broadcast.interconnect.ebd.package import MAX_TOTAL_BYTES, tar_name
from broadcast.interconnect.ebd.signing import Signer, Verifier
from broadcast.interconnect.link import BroadcastReporter, LinkTiming, UpperLink
from broadcast.interconnect.outbox import Outbox, OutboxSettings, OutboxState
from broadcast.interconnect.upper import UpperReceiver, last_issued_serial
from broadcast.interconnect.upper_boundary import CountyFacade, PacketMaker, UpperPeer, UpwardQueue
from broadcast.jsonhttp import json_error, json_response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InterconnectSettings:
    peers: Sequence[UpperPeer] = ()
    ebd_path: str = "/ebd"
    callback_url: str | None = None  # our SRC/URL: where upper platforms POST to us
    accept_dest: frozenset[str] = frozenset()  # extra DEST ids we answer to (e.g. a legacy 18-digit id)
    media_url: str | None = None  # where broadcasts are published for the media centre
    media_token: str | None = None  # bearer token the media centre must present when submitting
    timing: LinkTiming = field(default_factory=LinkTiming)
    outbox: OutboxSettings = field(default_factory=OutboxSettings)  # [interconnect.retry]
    success_ratio: float = 1.0
    run_loops: bool = True  # False in tests: drive tick()/deliver_due() by hand


class Interconnect:
    """The parts, built on application start-up (they need the database and an event loop)."""

    def __init__(
        self,
        facade: CountyFacade,
        engine: AsyncEngine,
        signer: Signer,
        verifier: Verifier,
        clock: Clock,
        settings: InterconnectSettings,
        session: aiohttp.ClientSession,
    ) -> None:
        self.facade = facade
        self.engine = engine
        self.signer = signer
        self.verifier = verifier
        self.clock = clock
        self.settings = settings
        self.session = session
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.outbox: Outbox
        self.receiver: UpperReceiver
        self.link: UpperLink
        self.reporter: BroadcastReporter
        self.media: media.MediaPublisher | None = None

    async def start(self) -> None:
        s = self.settings
        code = self.facade.platform_code
        self.outbox = Outbox(self.engine, self.session, self.clock, verifier=self.verifier, settings=s.outbox)
        last_serial = await last_issued_serial(self.engine, self.outbox, code)
        ids = EbdIdAllocator(code, self.clock, last_serial=last_serial)
        maker = PacketMaker(code, self.signer, ids, self.clock, callback_url=s.callback_url)
        upward = UpwardQueue(maker, self.outbox)
        self.receiver = UpperReceiver(
            self.facade,
            upward,
            self.verifier,
            self.engine,
            self.clock,
            s.peers,
            accept_dest=frozenset({code}) | s.accept_dest,
            success_ratio=s.success_ratio,
        )
        self.link = UpperLink(
            s.peers, upward, self.facade, self.session, self.clock, timing=s.timing, verifier=self.verifier
        )
        if s.media_url:
            self.media = media.MediaPublisher(self.outbox, s.media_url, self.facade.inventory())
        self.reporter = BroadcastReporter(
            self.facade,
            upward,
            self.engine,
            self.clock,
            s.peers,
            media=self.media,
            success_ratio=s.success_ratio,
        )
        if s.run_loops:
            self._tasks = [
                asyncio.create_task(self.outbox.run()),
                asyncio.create_task(self.link.run(self._stop)),
                asyncio.create_task(self.reporter.run(self._stop)),
            ]

    async def close(self) -> None:
        self._stop.set()
        if self._tasks:
            self.outbox.close()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []


INTERCONNECT = web.AppKey("interconnect", Interconnect)


def install_interconnect(
    app: web.Application,
    facade: CountyFacade,
    *,
    engine: AsyncEngine,
    signer: Signer,
    verifier: Verifier,
    clock: Clock,
    session: aiohttp.ClientSession,
    settings: InterconnectSettings | None = None,
) -> Interconnect:
    """Add the interconnect routes and lifecycle to `app`; the parts are built when the app starts and
    post through `session` (owned, opened and closed by the caller)."""
    settings = settings or InterconnectSettings()
    ic = Interconnect(facade, engine, signer, verifier, clock, settings, session)
    app[INTERCONNECT] = ic

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await ic.start()
        yield
        await ic.close()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post(settings.ebd_path, _post_ebd)
    app.router.add_post("/api/media/programmes", _post_programme)
    app.router.add_get("/api/media/programmes", _get_programmes)
    app.router.add_get("/api/interconnect/status", _get_status)
    return ic


# ---- handlers -------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


async def _read_stream(read: Any, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _TooLarge()
        chunks.append(chunk)


async def _package_bytes(request: web.Request) -> bytes:
    """The tar from a multipart body (field "file", else the first part that looks like an EBD file) or
    the raw body."""
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        fallback: bytes | None = None
        while (part := await reader.next()) is not None:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await _read_stream(part.read_chunk, MAX_TOTAL_BYTES)
            if part.name == "file":
                return data
            if fallback is None and (part.filename or "").upper().startswith("EBD"):
                fallback = data
        return fallback or b""
    return await _read_stream(request.content.read, MAX_TOTAL_BYTES)


async def _post_ebd(request: web.Request) -> web.Response:
    ic = request.app[INTERCONNECT]
    try:
        data = await _package_bytes(request)
    except _TooLarge:
        data = b""  # answered below as content missing; the tar limit is also enforced by unpack
    reply = await ic.receiver.receive(data)
    if reply.result_code in (0, 1):
        ic.outbox.wake()
    return web.Response(
        body=reply.tar,
        content_type="application/x-tar",
        headers={"Content-Disposition": f'attachment; filename="{tar_name(reply.ebd_id)}"'},
    )


def _submission_json(s: media.Submission) -> dict[str, Any]:
    return {
        "id": s.id,
        "submission_id": s.submission_id,
        "title": s.title,
        "text": s.text,
        "audio_url": s.audio_url,
        "area_codes": list(s.area_codes),
        "start_at": s.start_at.isoformat(),
        "end_at": s.end_at.isoformat() if s.end_at else None,
        "submitter": s.submitter,
        "status": s.status.value,
        "submitted_at": s.submitted_at.isoformat(),
        "decided_by": s.decided_by,
        "note": s.note,
    }


def _authorised(request: web.Request, token: str | None) -> bool:
    if not token:
        return True
    given = request.headers.get("Authorization", "")
    return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


async def _post_programme(request: web.Request) -> web.Response:
    ic = request.app[INTERCONNECT]
    if not _authorised(request, ic.settings.media_token):
        return json_error(
            401, "unauthorised", "令牌无效：请在 Authorization 头中携带县级平台分配的 Bearer 令牌"
        )
    try:
        doc = await request.json()
    except ValueError:
        return json_error(400, "bad_json", "请求体不是有效的 JSON，请检查格式后重试")
    if not isinstance(doc, dict):
        return json_error(400, "bad_json", "请求体应为 JSON 对象")
    try:
        sub, created = await media.accept_submission(ic.engine, doc, ic.clock.now())
    except media.SubmissionError as exc:
        return json_error(
            400, exc.fault.value, exc.message, field=exc.field, submission_id=exc.submission_id
        )
    return json_response(_submission_json(sub), status=201 if created else 200)


async def _get_programmes(request: web.Request) -> web.Response:
    ic = request.app[INTERCONNECT]
    if not _authorised(request, ic.settings.media_token):
        return json_error(
            401, "unauthorised", "令牌无效：请在 Authorization 头中携带县级平台分配的 Bearer 令牌"
        )
    raw = request.query.get("status")
    try:
        status = media.SubmissionStatus(raw) if raw else None
    except ValueError:
        return json_error(400, "bad_status", "status 取值应为 pending、approved 或 rejected")
    return json_response([_submission_json(s) for s in await media.list_submissions(ic.engine, status)])


async def _get_status(request: web.Request) -> web.Response:
    ic = request.app[INTERCONNECT]
    counts = {state.value: len(await ic.outbox.items(state)) for state in OutboxState}
    peers = [
        {
            "ebrid": st.peer.ebrid,
            "name": st.peer.name,
            "url": st.peer.url,
            "state": st.state.value,
            "last_answer": st.last_answer.isoformat() if st.last_answer else None,
            "last_error": st.last_error,
        }
        for st in ic.link.status.values()
    ]
    return json_response({"peers": peers, "outbox": counts})
