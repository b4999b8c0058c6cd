"""Playback of a simulated IP loudspeaker terminal (sim.ip_terminal.SimTerminal): deciding whether a start
instruction plays, preempts or is refused busy, streaming the audio, "playing" it for its real duration ×
``time_scale``, the ground-truth ``PlayRecord`` and the task-switch / broadcast-result reports it makes.

Owns ``Playback``, the playback half of ``SimTerminal`` (a mixin it inherits), and ``terminal_rank``.
Never opens or keeps the link to the controller, never sends frames itself (it asks the terminal's
``_respond`` / ``_request`` / ``_report``), and never imports the controller core.
Sleeping here is deliberate: it stands in for playback time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import aiohttp

from adapters.ip_speaker.codec import (
    Frame,
)
from adapters.ip_speaker.params import QueryReply
from adapters.ip_speaker.payload_fields import ResultCode, TaskFlag, TaskType, WorkState
from adapters.ip_speaker.payloads import BroadcastResult, Reply, RequestPayload, StartBroadcast, TaskSwitch
from broadcast.clock import Clock
from sim.mp3 import NotMpegAudio, mpeg_duration

# The terminal's logger name, so one logger covers the whole simulated terminal.
log = logging.getLogger("sim.ip_terminal")

FETCH_FAILED = "音频获取失败"
STREAM_BROKEN = "音频流中断"
STOPPED = "播发已停止"
PREEMPTED = "被新任务中断"
INTERRUPTED = "被更高优先级插播中断"
BUSY_DESC = "终端忙：正在播发更高优先级的节目"
# Preemption as a terminal sees it (上级优先、应急优先 without the source level, which a StartBroadcast does
# not carry): tier by broadcast type (1-3 drill, 4 emergency, 5 daily), then level 1 red … 4 blue.
# A strictly lower start is refused busy (31), the controller retries. A strictly higher one interrupts:
# the current task ends (TaskSwitch end, no result) and the interrupted EBM plays again from the start
# when it is sent again. An equal one replaces the current one (newest instruction wins; the current
# one is reported failed, 被新任务中断): the controller only sends an equal-ranked start when it believes
# the terminal is free. Mirrors broadcast/preemption.py, which sim must not import (tests/dispatch
# checks that the two agree).
_TIER_BY_TYPE = {1: 2, 2: 2, 3: 2, 4: 3, 5: 1}
AUDIBLE_BYTES = 512  # a few MP3 frames: enough to tell audio from an error page before "playing"


@dataclass
class PlayRecord:
    """Ground truth: one playback as the terminal lived it."""

    ebm_id: str
    started_at: datetime
    ended_at: datetime | None = None
    completed: bool = False


class Playback:
    """The playback half of ``SimTerminal``; the terminal provides the attributes and the link methods."""

    code: str
    time_scale: float
    stream_stall_s: float
    played: list[PlayRecord]
    duplicates_ignored: int
    fetch_failures: int
    work_state: WorkState
    _http: aiohttp.ClientSession
    _clock: Clock
    _known: set[str]
    _interrupted: set[str]
    _current: StartBroadcast | None
    _play_task: asyncio.Task[None] | None
    _playing: str | None
    _cancel_reason: str
    _nack: list[int]
    _reject_all: int | None
    _delay_s: float

    def _respond(self, frame: Frame, reply: Reply | QueryReply) -> None:
        raise NotImplementedError

    def _request(self, payload: RequestPayload, source: str | None = None) -> int | None:
        raise NotImplementedError

    def _report(self, result: BroadcastResult) -> None:
        raise NotImplementedError

    def _now(self) -> int:
        raise NotImplementedError

    def _on_start(self, frame: Frame, sb: StartBroadcast) -> None:
        if self._nack:
            self._respond(frame, Reply(self._nack.pop(0), "终端忙"))
            return
        if self._reject_all is not None:
            self._respond(frame, Reply(self._reject_all, "终端拒绝"))
            return
        if frame.targets and self.code not in frame.targets:
            self._respond(frame, Reply(ResultCode.RESOURCE_CODE_INVALID, "目标不含本终端"))
            return
        if sb.ebm_id in self._known and sb.ebm_id not in self._interrupted:
            self._respond(frame, Reply(ResultCode.OK))
            self.duplicates_ignored += 1
            return
        current = self._current if self._play_task is not None and not self._play_task.done() else None
        if current is not None and terminal_rank(sb) < terminal_rank(current):
            # Lower than what is on air: busy, the controller retries later.
            self._respond(frame, Reply(ResultCode.BUSY, BUSY_DESC))
            return
        self._respond(frame, Reply(ResultCode.OK))
        self._known.add(sb.ebm_id)
        self._interrupted.discard(sb.ebm_id)  # resumed: plays again from the start
        if current is not None:
            # Cut off before its end: if the platform sends it again later, it plays again (a start for
            # something played to the end is still a duplicate).
            self._interrupted.add(current.ebm_id)
        if current is not None and terminal_rank(sb) > terminal_rank(current):
            self._cancel_playback(INTERRUPTED)
        else:
            self._cancel_playback(PREEMPTED)
        delay = self._delay_s
        self._current = sb
        self._play_task = asyncio.create_task(self._play(sb, delay))

    # -- playback ------------------------------------------------------------------------------

    def _cancel_playback(self, reason: str, report: bool = True) -> None:
        task = self._play_task
        if task is not None and not task.done():
            self._cancel_reason = reason if report else ""
            task.cancel()

    async def _play(self, sb: StartBroadcast, after_s: float) -> None:
        """Stream the audio: playing starts when the first audio arrives (TaskSwitch start) and lasts
        until the stream has ended and its duration × ``time_scale`` has passed since the first bytes."""
        if after_s:
            await asyncio.sleep(after_s)  # reports never overtake the (delayed) reply
        task_type = TaskType.DAILY_SOURCE if sb.broadcast_type == 5 else TaskType.EMERGENCY_SOURCE
        loop = asyncio.get_running_loop()
        record: PlayRecord | None = None
        start = 0
        first_at = 0.0
        data = bytearray()
        try:
            try:
                async with self._open_audio(sb.url) as resp:
                    async for chunk in resp.content.iter_any():
                        data += chunk
                        if record is None and _audible(data):
                            first_at = loop.time()
                            record, start = self._begin(sb, task_type)
                if record is None:
                    mpeg_duration(bytes(data))  # a short file: raises NotMpegAudio if it holds no audio
                    first_at = loop.time()
                    record, start = self._begin(sb, task_type)
                duration = mpeg_duration(bytes(data))
            except (aiohttp.ClientError, NotMpegAudio, TimeoutError, ValueError) as exc:
                self.fetch_failures += 1
                log.debug("sim terminal %s: fetching %s failed: %s", self.code, sb.url, exc)
                now = self._now()
                if record is None:
                    self._report(BroadcastResult(sb.ebm_id, 0, FETCH_FAILED, now, now, 0, now))
                    return
                self._end(record, sb, task_type, start, STREAM_BROKEN)
                return
            await asyncio.sleep(max(0.0, first_at + duration * self.time_scale - loop.time()))
        except asyncio.CancelledError:
            if record is not None:
                self._end(record, sb, task_type, start, self._cancel_reason)
            raise
        self._end(record, sb, task_type, start, None)

    def _begin(self, sb: StartBroadcast, task_type: TaskType) -> tuple[PlayRecord, int]:
        record = PlayRecord(sb.ebm_id, self._clock.now())
        self.played.append(record)
        self._playing = sb.ebm_id
        self.work_state = WorkState.BROADCASTING
        start = self._now()
        self._request(TaskSwitch(TaskFlag.START, task_type, sb.ebm_id, start))
        return record, start

    def _end(
        self, record: PlayRecord, sb: StartBroadcast, task_type: TaskType, start: int, failure: str | None
    ) -> None:
        """Playback over: completed when ``failure`` is None, else report why (empty: report nothing)."""
        record.ended_at = max(record.started_at, self._clock.now())
        record.completed = failure is None
        self._playing = None
        self.work_state = WorkState.IDLE
        now = self._now()
        if failure is None:
            self._report(BroadcastResult(sb.ebm_id, 1, "播发成功", start, max(start, now), 1, now))
        elif failure == INTERRUPTED:
            # Interrupted, not finished: the task ends (TaskSwitch end) and the result is reported when
            # it is resumed and completes, so the controller can put it back on air.
            pass
        elif failure:
            self._report(BroadcastResult(sb.ebm_id, 0, failure, start, now, 0, now))
        else:
            return
        self._request(TaskSwitch(TaskFlag.END, task_type, sb.ebm_id, now))

    @contextlib.asynccontextmanager
    async def _open_audio(self, url: str | None) -> AsyncIterator[aiohttp.ClientResponse]:
        if not url or not url.startswith(("http://", "https://")):
            raise ValueError(f"no fetchable audio URL: {url!r}")
        # No total deadline: a live programme grows while its speech is rendered. A stall is bounded.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=self.stream_stall_s)
        async with self._http.get(url, timeout=timeout) as resp:
            resp.raise_for_status()
            yield resp


def terminal_rank(sb: StartBroadcast) -> tuple[int, int]:
    """(tier, severity) of a start instruction; higher preempts. Unknown types count as emergencies."""
    tier = _TIER_BY_TYPE.get(int(sb.broadcast_type), 3)
    severity = 5 - sb.level if tier == 3 and 1 <= sb.level <= 4 else 0
    return tier, severity


def _audible(data: bytearray) -> bool:
    """Enough bytes to be sure this is MPEG audio (two frames' worth, checked by the frame walker)."""
    if len(data) < AUDIBLE_BYTES:
        return False
    try:
        mpeg_duration(bytes(data[:AUDIBLE_BYTES]))
    except NotMpegAudio:
        return False
    return True
