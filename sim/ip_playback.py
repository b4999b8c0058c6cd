"""Playback of a simulated IP loudspeaker terminal (sim.ip_terminal.SimTerminal): deciding whether a start
instruction plays, preempts or is refused busy, streaming the audio, "playing" it for its real duration ×
``time_scale``, the ground-truth ``PlayRecord`` and the task-switch / broadcast-result reports it makes.

Owns ``Playback`` (composed by ``SimTerminal``, which hands it the ``PlaybackLink`` it answers and
reports through) and ``terminal_rank``. Never opens or keeps the link to the controller, never sends
frames itself, never applies the terminal's fault levers, and never imports the controller core.
Sleeping here is deliberate: it stands in for playback time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import aiohttp

from adapters.ip_speaker.codec import Frame
from adapters.ip_speaker.payload_fields import ResultCode, TaskFlag, TaskType, WorkState
from adapters.ip_speaker.payloads import BroadcastResult, Reply, StartBroadcast, TaskSwitch
from broadcast.clock import Clock
from sim.mp3 import NotMpegAudio, mpeg_duration

log = logging.getLogger(__name__)

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


class PlaybackLink(Protocol):
    """What playback asks of its terminal."""

    def answer_start(self, frame: Frame, reply: Reply) -> None:
        """Answer the controller's start instruction ``frame``."""

    def send_task_switch(self, ts: TaskSwitch) -> None:
        """Report a task switch to the controller now (lost if the link is down)."""

    def send_result(self, result: BroadcastResult) -> None:
        """Report a broadcast result (stored and forwarded if the link is down)."""

    def set_work_state(self, state: WorkState) -> None: ...


class Playback:
    """What one simulated terminal plays; see the module docstring."""

    def __init__(
        self,
        code: str,
        http: aiohttp.ClientSession,
        clock: Clock,
        link: PlaybackLink,
        *,
        time_scale: float = 1.0,
        stream_stall_s: float = 60.0,
    ) -> None:
        self.code = code
        self.time_scale = time_scale
        self.stream_stall_s = stream_stall_s  # longest silence on the audio connection before giving up
        self._http = http
        self._clock = clock
        self._link = link
        # ground truth
        self.played: list[PlayRecord] = []
        self.duplicates_ignored = 0
        self.fetch_failures = 0
        # state
        self._known: set[str] = set()
        self._interrupted: set[str] = set()  # preempted before completing: a new start resumes them
        self._current: StartBroadcast | None = None  # what the play task is playing (or fetching)
        self._play_task: asyncio.Task[None] | None = None
        self._playing: str | None = None
        self._cancel_reason = STOPPED

    @property
    def playing(self) -> str | None:
        return self._playing

    def start(self, frame: Frame, sb: StartBroadcast, delay_s: float) -> None:
        """A start instruction the terminal accepts to consider (its levers passed): answer it and play,
        or refuse it busy, or acknowledge a duplicate. Reports wait ``delay_s`` (the delayed reply)."""
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
            self.cancel(INTERRUPTED)
        else:
            self.cancel(PREEMPTED)
        self._current = sb
        self._play_task = asyncio.create_task(self._play(sb, delay_s))

    def stop(self, ebm_id: str) -> None:
        """A stop instruction: ends ``ebm_id`` if it is playing."""
        if self._playing == ebm_id:
            self.cancel(STOPPED)
            # Stopped before its end: a later start of it is a new instruction, not a duplicate.
            self._interrupted.add(ebm_id)

    def forget(self) -> None:
        """After a reboot: what was sent before is unknown again (the ground truth stays)."""
        self._known.clear()
        self._interrupted.clear()

    def cancel(self, reason: str, report: bool = True) -> None:
        task = self._play_task
        if task is not None and not task.done():
            self._cancel_reason = reason if report else ""
            task.cancel()

    async def wait(self) -> None:
        """Until the current playback (if any) has ended."""
        if self._play_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._play_task

    def _respond(self, frame: Frame, reply: Reply) -> None:
        self._link.answer_start(frame, reply)

    def _now(self) -> int:
        return int(self._clock.now().timestamp())

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
                    self._link.send_result(BroadcastResult(sb.ebm_id, 0, FETCH_FAILED, now, now, 0, now))
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
        self._link.set_work_state(WorkState.BROADCASTING)
        start = self._now()
        self._link.send_task_switch(TaskSwitch(TaskFlag.START, task_type, sb.ebm_id, start))
        return record, start

    def _end(
        self, record: PlayRecord, sb: StartBroadcast, task_type: TaskType, start: int, failure: str | None
    ) -> None:
        """Playback over: completed when ``failure`` is None, else report why (empty: report nothing)."""
        record.ended_at = max(record.started_at, self._clock.now())
        record.completed = failure is None
        self._playing = None
        self._link.set_work_state(WorkState.IDLE)
        now = self._now()
        if failure is None:
            self._link.send_result(BroadcastResult(sb.ebm_id, 1, "播发成功", start, max(start, now), 1, now))
        elif failure == INTERRUPTED:
            # Interrupted, not finished: the task ends (TaskSwitch end) and the result is reported when
            # it is resumed and completes, so the controller can put it back on air.
            pass
        elif failure:
            self._link.send_result(BroadcastResult(sb.ebm_id, 0, failure, start, now, 0, now))
        else:
            return
        self._link.send_task_switch(TaskSwitch(TaskFlag.END, task_type, sb.ebm_id, now))

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
