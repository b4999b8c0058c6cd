"""Terminal reports of the IP loudspeaker protocol turned into what the controller hears: task-switch,
broadcast-result and broadcast-record (0x16) reports become delivery events, link-state changes and
heartbeats go to the sink, and reports that contradict what was sent are rejected with result 54 and produce no event.

Owns: ``ReportHandling``, composed by ``IpSpeakerAdapter`` from the sink, the clock, the adapter's
``reply`` and its counters — everything it uses is handed to it.
Never: opens or closes connections, binds terminals, sends requests, retries, or touches the store or
the dispatcher; it only answers the report and tells the ``AdapterSink``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from adapters.base import AdapterSink
from adapters.ip_speaker.codec import Frame
from adapters.ip_speaker.link import Link
from adapters.ip_speaker.payload_fields import RecordState, ResultCode, TaskFlag
from adapters.ip_speaker.payloads import BroadcastRecords, BroadcastResult, TaskSwitch
from adapters.ip_speaker.terminal_state import TerminalState
from broadcast.clock import Clock
from broadcast.messages import DeliveryReport, HeartbeatReport, LinkReport
from broadcast.model import DeliveryStatus, FailureReason, LinkState

log = logging.getLogger(__name__)

Replier = Callable[[Link, Frame, int, str], None]
"""Answer a terminal's request frame with a result code and a description."""


def _ts(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat()


class ReportHandling:
    """The IP adapter's terminal reports and link states; counts ``rejected_reports`` and ``records_in``."""

    def __init__(self, sink: AdapterSink, clock: Clock, reply: Replier, counts: dict[str, int]) -> None:
        self._sink = sink
        self._clock = clock
        self._reply_to = reply
        self._counts = counts

    def _reply(self, link: Link, frame: Frame, result: int, desc: str = "") -> None:
        self._reply_to(link, frame, result, desc)

    def task_switch(self, link: Link, frame: Frame, state: TerminalState, ts: TaskSwitch) -> None:
        if not state.was_delivered(ts.ebm_id):
            self.reject(link, frame, state, "unknown_ebm", f"任务切换上报了未下发的 EBM {ts.ebm_id}")
            return
        if ts.flag not in (TaskFlag.START, TaskFlag.END):
            self.reject(link, frame, state, "flag", f"任务切换标志 {ts.flag} 无效")
            return
        self._reply(link, frame, ResultCode.OK)
        if ts.flag == TaskFlag.START:
            self._event(
                state,
                ts.ebm_id,
                DeliveryStatus.PLAYING,
                meta={"task_type": str(ts.task_type), "terminal_time": _ts(ts.time)},
            )

    def result(self, link: Link, frame: Frame, state: TerminalState, br: BroadcastResult) -> None:
        if not state.was_delivered(br.ebm_id):
            self.reject(link, frame, state, "unknown_ebm", f"播发结果上报了未下发的 EBM {br.ebm_id}")
            return
        if br.end < br.start:
            self.reject(link, frame, state, "times", f"EBM {br.ebm_id} 的结束时间早于开始时间")
            return
        if br.result not in (0, 1):
            self.reject(link, frame, state, "result", f"播发结果 {br.result} 无效")
            return
        self._reply(link, frame, ResultCode.OK)
        meta = {
            "play_count": str(br.play_count),
            "started_at": _ts(br.start),
            "ended_at": _ts(br.end),
            "reported_at": _ts(br.report_time),
        }
        if br.result == 1:
            self._event(state, br.ebm_id, DeliveryStatus.PLAYED, meta=meta)
        elif br.ebm_id in state.stopped:
            self._event(state, br.ebm_id, DeliveryStatus.CANCELLED, FailureReason.CANCELLED, br.desc, meta)
        else:
            self._event(state, br.ebm_id, DeliveryStatus.FAILED, FailureReason.PLAYBACK_FAILED, br.desc, meta)

    def records(self, link: Link, frame: Frame, state: TerminalState, recs: BroadcastRecords) -> None:
        """0x16: each record about a broadcast sent to this terminal joins its delivery history (the
        receipt book ignores what it already knows); other records (local tasks) are not ours."""
        self._reply(link, frame, ResultCode.OK)
        self._counts["records_in"] += 1
        for rec in recs.records:
            if not state.was_delivered(rec.ebm_id) or rec.end < rec.start:
                continue
            meta = {
                "source": "records",
                "channel": str(rec.channel),
                "started_at": _ts(rec.start),
                "ended_at": _ts(rec.end),
            }
            if rec.state == RecordState.BROADCASTING:
                self._event(state, rec.ebm_id, DeliveryStatus.PLAYING, meta=meta)
            elif rec.state == RecordState.SUCCESS:
                self._event(state, rec.ebm_id, DeliveryStatus.PLAYED, meta=meta)
            elif rec.state == RecordState.CANCELLED or (
                rec.state == RecordState.FAILED and rec.ebm_id in state.stopped
            ):
                self._event(state, rec.ebm_id, DeliveryStatus.CANCELLED, FailureReason.CANCELLED, meta=meta)
            elif rec.state == RecordState.FAILED:
                self._event(
                    state,
                    rec.ebm_id,
                    DeliveryStatus.FAILED,
                    FailureReason.PLAYBACK_FAILED,
                    "播发记录：失败",
                    meta,
                )

    def reject(self, link: Link, frame: Frame, state: TerminalState, kind: str, detail: str) -> None:
        """A report that contradicts what the controller knows: answer 54, no event, log once."""
        self._counts["rejected_reports"] += 1
        self._reply(link, frame, ResultCode.PARAM_ILLEGAL, detail)
        if kind not in state.lies_logged:
            state.lies_logged.add(kind)
            log.warning("ip_speaker: rejected a report from terminal %s: %s", state.code, detail)

    # -- reporting -----------------------------------------------------------------------------

    def _event(
        self,
        state: TerminalState,
        ebm_id: str,
        status: DeliveryStatus,
        reason: FailureReason | None = None,
        detail: str = "",
        meta: dict[str, str] | None = None,
    ) -> None:
        self._sink.report(
            DeliveryReport(ebm_id, state.code, status, self._clock.now(), reason, detail, meta or {})
        )

    def set_link_state(self, state: TerminalState, new: LinkState, detail: str) -> None:
        if state.link_state is new:
            return
        old, state.link_state = state.link_state, new
        first = not state.seen_online and new is LinkState.ONLINE
        state.seen_online = state.seen_online or new is not LinkState.OFFLINE
        level = logging.DEBUG if first else logging.INFO  # the first registration is not news
        log.log(level, "ip_speaker: terminal %s %s → %s (%s)", state.code, old, new, detail)
        self._sink.report(LinkReport(state.code, new, self._clock.now(), detail))

    def heartbeat(self, state: TerminalState) -> None:
        self._sink.report(HeartbeatReport(state.code, self._clock.now()))
