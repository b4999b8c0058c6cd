"""Tone-first playout (先播提示音): the first audio a terminal gets starts at once; speech follows.

Design: a *live programme* is one growing MP3 stream, served by ``broadcast.web.live`` at
``/audio/live/<ebm_id>.mp3`` with chunked transfer. Its parts are

    opening  = opening chime + lead-in   (pre-encoded once per process by ``AudioRenderer.chime_segments``)
    middle   = the speech (+ repeats)    (``AudioRenderer.render(..., layout=Layout.SPEECH)``, when ready)
    closing  = lead-out + closing chime  (pre-encoded)

All three are MP3 with the same parameters (24 kHz mono 48 kbit/s CBR, no ID3/Xing header) and each ends
on a whole frame with no bit reservoir crossing the join, so their concatenation is one valid MP3 stream
laid out like a full render (each join adds the encoder delay, ≈50 ms of silence). A client receives the
opening at once, then waits (at most ``speech_wait_s``) for the speech. If rendering fails or the wait
runs out, the stream carries a spoken fallback notice rendered at start-up (if any) and the closing chime,
then ends: a terminal is never left hanging. Every client that joins after the programme settled gets the
same bytes in one go, so all terminals play identical audio; the whole programme is also stored in the
cache and its ``AudioRef`` (digest of the concatenation) is what the broadcast records.

Entries live until the message's end time (checked against the injected clock whenever the registry is
used); streams already running keep their programme object until they finish.

Must never: block a client on rendering beyond ``speech_wait_s``, send different bytes to clients that
join a settled programme, dispatch or talk to terminals, or sleep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from broadcast.audio.render import AudioRenderer, ChimeSegments, Layout, RenderedAudio
from broadcast.clock import Clock
from broadcast.model import AudioRef

__all__ = [
    "DEFAULT_FALLBACK_TEXT",
    "LiveProgramme",
    "LiveProgrammes",
    "LiveState",
    "PlayoutError",
    "PlayoutFailure",
]

log = logging.getLogger(__name__)

DEFAULT_FALLBACK_TEXT = "应急广播提示：本条预警的语音暂时无法播放，请留意后续广播或通过其他渠道了解详情。"
DEFAULT_SPEECH_WAIT_S = 120.0  # longer than the engine chain's worst case (edge timeout + offline)
CHUNK_BYTES = 32 * 1024


class LiveState(StrEnum):
    RENDERING = "rendering"  # opening available, speech not yet
    READY = "ready"  # speech arrived: the programme is complete
    FAILED = "failed"  # rendering failed: the programme is opening + fallback + closing


class PlayoutFailure(StrEnum):
    RENDER_FAILED = "render_failed"  # the renderer raised (all engines down, ffmpeg failed, bad text)
    EXPIRED = "expired"  # the message ended before its speech was rendered
    NOT_WARMED = "not_warmed"  # ``open()`` before ``warm()``: the chimes are not encoded yet


class PlayoutError(Exception):
    """A live programme (``ebm_id``) could not be completed."""

    def __init__(self, ebm_id: str, failure: PlayoutFailure, detail: str = "") -> None:
        self.ebm_id = ebm_id
        self.failure = failure
        self.detail = detail
        hint = {
            PlayoutFailure.RENDER_FAILED: "终端已播放提示音和备用提示语；请检查语音引擎后重新发布，或上传录音。",
            PlayoutFailure.EXPIRED: "消息已过结束时间，未完成语音制作。",
            PlayoutFailure.NOT_WARMED: "请在启动时调用 LiveProgrammes.warm()。",
        }[failure]
        super().__init__(f"直播音频 {ebm_id} 制作失败（{failure}）：{detail} {hint}".strip())


@dataclass(frozen=True)
class _Settled:
    middle: bytes  # speech, or the fallback notice (may be empty)
    full: bytes  # opening + middle + closing


class LiveProgramme:
    """One message's growing MP3 stream. Create through ``LiveProgrammes``."""

    def __init__(
        self,
        ebm_id: str,
        expires_at: datetime,
        chimes: ChimeSegments,
        *,
        fallback: bytes = b"",
        speech_wait_s: float = DEFAULT_SPEECH_WAIT_S,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.ebm_id = ebm_id
        self.expires_at = expires_at
        self._chimes = chimes
        self._fallback = fallback
        self._speech_wait_s = speech_wait_s
        self._chunk = chunk_bytes
        self.state = LiveState.RENDERING
        self.error: PlayoutError | None = None
        self.audio: AudioRef | None = None  # the whole programme, once stored (see LiveProgrammes.start)
        self.streams_served = 0
        self.waits_timed_out = 0
        self._settled: _Settled | None = None
        self._settled_event = asyncio.Event()
        self._stored = asyncio.get_running_loop().create_future()  # AudioRef of the whole programme
        self._task: asyncio.Task[None] | None = None

    @property
    def opening(self) -> bytes:
        return self._chimes.opening

    @property
    def settled(self) -> bool:
        return self._settled is not None

    def full_bytes(self) -> bytes | None:
        """The whole programme once settled (what every client gets), else None."""
        return self._settled.full if self._settled is not None else None

    def finish(self, speech: bytes) -> None:
        """The speech (an MP3 rendered with ``Layout.SPEECH``) is ready. Later calls are ignored."""
        if not speech:
            self.fail(PlayoutError(self.ebm_id, PlayoutFailure.RENDER_FAILED, "empty speech"))
            return
        self._settle(LiveState.READY, speech)

    def fail(self, exc: BaseException) -> None:
        """Rendering failed: clients get the fallback notice and the closing chime."""
        err = (
            exc
            if isinstance(exc, PlayoutError)
            else PlayoutError(self.ebm_id, PlayoutFailure.RENDER_FAILED, f"{type(exc).__name__}: {exc}")
        )
        if not self._stored.done():
            self._stored.set_exception(err)
            self._stored.exception()  # mark retrieved: nobody may ever ask for it
        if self._settled is not None:
            return
        self.error = err
        log.warning("live programme %s: %s", self.ebm_id, err)
        self._settle(LiveState.FAILED, self._fallback)

    async def result(self) -> AudioRef:
        """The stored whole programme (for programmes begun with ``LiveProgrammes.start``); raises
        ``PlayoutError`` if its speech could not be rendered or stored."""
        return await asyncio.shield(self._stored)

    async def stream(self) -> AsyncIterator[bytes]:
        """The programme's bytes: the opening at once, the rest when ready (bounded wait)."""
        self.streams_served += 1
        settled = self._settled
        if settled is not None:
            for chunk in self._chunks(settled.full):
                yield chunk
            return
        yield self.opening
        try:
            async with asyncio.timeout(self._speech_wait_s):
                await self._settled_event.wait()
        except TimeoutError:
            self.waits_timed_out += 1
            if self.waits_timed_out == 1:
                log.warning(
                    "live programme %s: no speech within %.0f s, ending the stream with the fallback notice",
                    self.ebm_id,
                    self._speech_wait_s,
                )
        settled = self._settled
        for chunk in self._chunks(settled.middle if settled is not None else self._fallback):
            yield chunk
        yield self._chimes.closing

    def _chunks(self, data: bytes) -> Iterator[bytes]:
        for i in range(0, len(data), self._chunk):
            yield data[i : i + self._chunk]

    def _settle(self, state: LiveState, middle: bytes) -> None:
        if self._settled is not None:
            return
        self.state = state
        self._settled = _Settled(middle, self._chimes.opening + middle + self._chimes.closing)
        self._settled_event.set()

    def _stored_as(self, ref: AudioRef) -> None:
        self.audio = ref
        if not self._stored.done():
            self._stored.set_result(ref)

    def _cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self.fail(
            PlayoutError(self.ebm_id, PlayoutFailure.EXPIRED, f"ended at {self.expires_at.isoformat()}")
        )


class LiveProgrammes:
    """Registry of live programmes by EBM id, with the pre-encoded chimes and fallback notice.

    Call ``await warm()`` at start-up (encodes the chimes and renders the fallback notice), then
    ``await start(ebm_id, title, text, repeats=…, expires_at=…)`` when a message is accepted: it returns
    at once with the programme (the opening is already available) and renders the speech in the
    background. ``fallback_text=None`` means no notice (the stream is just the two chimes on failure).
    """

    def __init__(
        self,
        renderer: AudioRenderer,
        clock: Clock,
        *,
        speech_wait_s: float = DEFAULT_SPEECH_WAIT_S,
        fallback_text: str | None = DEFAULT_FALLBACK_TEXT,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.renderer = renderer
        self._clock = clock
        self._speech_wait_s = speech_wait_s
        self._fallback_text = fallback_text
        self._chunk = chunk_bytes
        self._chimes: ChimeSegments | None = None
        self._fallback = b""
        self._live: dict[str, LiveProgramme] = {}

    async def warm(self) -> None:
        """Encode the chimes and render the fallback notice. Idempotent; a failed fallback render only
        logs (the chimes alone still make a stream that ends)."""
        if self._chimes is not None:
            return
        chimes = await self.renderer.chime_segments()
        if self._fallback_text:
            try:
                fb = await self.renderer.render("", self._fallback_text, layout=Layout.SPEECH)
                self._fallback = await asyncio.to_thread(fb.path.read_bytes)
            except Exception:
                log.exception("could not render the playout fallback notice; failures will be chimes only")
        self._chimes = chimes

    def open(self, ebm_id: str, expires_at: datetime) -> LiveProgramme:
        """Register a programme whose speech the caller will ``finish()`` (or ``fail()``). Returns the
        existing one if ``ebm_id`` is already live."""
        self.sweep()
        existing = self._live.get(ebm_id)
        if existing is not None:
            return existing
        if self._chimes is None:
            raise PlayoutError(ebm_id, PlayoutFailure.NOT_WARMED, "chimes not encoded")
        prog = LiveProgramme(
            ebm_id,
            expires_at,
            self._chimes,
            fallback=self._fallback,
            speech_wait_s=self._speech_wait_s,
            chunk_bytes=self._chunk,
        )
        self._live[ebm_id] = prog
        return prog

    async def start(
        self,
        ebm_id: str,
        title: str,
        text: str,
        *,
        expires_at: datetime,
        repeats: int = 1,
        gap_s: float = 1.0,
    ) -> LiveProgramme:
        """Open the programme and render its speech in the background; ``await prog.result()`` for the
        stored whole programme. Never waits for speech synthesis."""
        await self.warm()
        prog = self.open(ebm_id, expires_at)
        if prog._task is None and not prog.settled:

            def render() -> Awaitable[RenderedAudio]:
                return self.renderer.render(title, text, repeats=repeats, gap_s=gap_s, layout=Layout.SPEECH)

            prog._task = asyncio.create_task(self._complete(prog, render), name=f"live-render-{ebm_id}")
        return prog

    async def start_recording(self, ebm_id: str, digest: str, *, expires_at: datetime) -> LiveProgramme:
        """Like ``start`` for an operator's uploaded recording (``POST /api/audio``, stored as MP3 with this
        renderer's options): it plays once, as supplied, between the chimes. Raises nothing for a missing
        file: the programme then fails like a failed render (fallback notice, ``result()`` raises)."""
        await self.warm()
        prog = self.open(ebm_id, expires_at)
        if prog._task is None and not prog.settled:

            async def recorded() -> RenderedAudio:
                path = self.renderer.cache.path_for(digest, "mp3")
                if path is None:
                    raise PlayoutError(
                        ebm_id, PlayoutFailure.RENDER_FAILED, f"录音 {digest[:12]}… 不在音频缓存中，请重新上传"
                    )
                size = await asyncio.to_thread(lambda: path.stat().st_size)
                duration = size * 8 / (self.renderer.options.mp3_bitrate_k * 1000)
                return RenderedAudio(AudioRef(digest, "mp3", round(duration, 3), engine="upload"), path, True)

            prog._task = asyncio.create_task(self._complete(prog, recorded), name=f"live-recording-{ebm_id}")
        return prog

    def get(self, ebm_id: str) -> LiveProgramme | None:
        """The live programme for ``ebm_id`` unless unknown or past its end time."""
        self.sweep()
        return self._live.get(ebm_id)

    def sweep(self) -> int:
        """Forget programmes whose message has ended (cancelling a render still running)."""
        now = self._clock.now()
        gone = [k for k, p in self._live.items() if p.expires_at <= now]
        for k in gone:
            self._live.pop(k)._cancel()
        return len(gone)

    def __len__(self) -> int:
        return len(self._live)

    async def close(self) -> None:
        """Cancel background renders (shutdown)."""
        tasks = [p._task for p in self._live.values() if p._task is not None and not p._task.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t

    async def _complete(self, prog: LiveProgramme, render: Callable[[], Awaitable[RenderedAudio]]) -> None:
        try:
            rendered = await render()
            speech = await asyncio.to_thread(rendered.path.read_bytes)
            prog.finish(speech)
            full = prog.full_bytes()
            if full is None or prog.state is not LiveState.READY:
                return
            # The stream is already served from memory; the stored copy is for the record and replays.
            digest, _path = await asyncio.to_thread(self.renderer.cache.put, full, "mp3")
        except asyncio.CancelledError:
            prog.fail(PlayoutError(prog.ebm_id, PlayoutFailure.EXPIRED, "render cancelled"))
            raise
        except Exception as exc:
            prog.fail(exc)
            return
        chimes, ref = prog._chimes, rendered.ref
        prog._stored_as(
            AudioRef(
                digest=digest,
                format="mp3",
                duration_s=round(chimes.opening_s + ref.duration_s + chimes.closing_s, 3),
                engine=ref.engine,
                voice=ref.voice,
            )
        )
