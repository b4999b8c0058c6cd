"""Turning a terminal's relayed report into delivery events, with the same checks the direct IP
adapter applies: a report about a broadcast never sent to that terminal, or one that contradicts
itself, is refused (result 54) and produces no event.

Pure: returns events or a refusal; never sends, never touches the sink.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from adapters.ip_speaker.payload_fields import RecordState, TaskFlag
from adapters.ip_speaker.payloads import BroadcastRecords, BroadcastResult, TaskSwitch
from adapters.ip_speaker.terminal_state import TerminalState
from broadcast.messages import DeliveryReport
from broadcast.model import DeliveryStatus, FailureReason


@dataclass(frozen=True)
class Refusal:
    kind: str
    detail: str


def _ts(value: int) -> str:
    return datetime.fromtimestamp(value, UTC).isoformat()


def task_switch(
    state: TerminalState, ts: TaskSwitch, now: datetime, via: str
) -> list[DeliveryReport] | Refusal:
    if not state.was_delivered(ts.ebm_id):
        return Refusal("unknown_ebm", f"任务切换上报了未下发的 EBM {ts.ebm_id}")
    if ts.flag not in (TaskFlag.START, TaskFlag.END):
        return Refusal("flag", f"任务切换标志 {ts.flag} 无效")
    if ts.flag != TaskFlag.START:
        return []
    meta = {"task_type": str(ts.task_type), "terminal_time": _ts(ts.time), "front_end": via}
    return [DeliveryReport(ts.ebm_id, state.code, DeliveryStatus.PLAYING, now, None, "", meta)]


def result(
    state: TerminalState, br: BroadcastResult, now: datetime, via: str
) -> list[DeliveryReport] | Refusal:
    if not state.was_delivered(br.ebm_id):
        return Refusal("unknown_ebm", f"播发结果上报了未下发的 EBM {br.ebm_id}")
    if br.end < br.start:
        return Refusal("times", f"EBM {br.ebm_id} 的结束时间早于开始时间")
    if br.result not in (0, 1):
        return Refusal("result", f"播发结果 {br.result} 无效")
    meta = {
        "play_count": str(br.play_count),
        "started_at": _ts(br.start),
        "ended_at": _ts(br.end),
        "reported_at": _ts(br.report_time),
        "front_end": via,
    }
    if br.result == 1:
        return [DeliveryReport(br.ebm_id, state.code, DeliveryStatus.PLAYED, now, None, "", meta)]
    if br.ebm_id in state.stopped:
        status, reason = DeliveryStatus.CANCELLED, FailureReason.CANCELLED
    else:
        status, reason = DeliveryStatus.FAILED, FailureReason.PLAYBACK_FAILED
    return [DeliveryReport(br.ebm_id, state.code, status, now, reason, br.desc, meta)]


def records(state: TerminalState, recs: BroadcastRecords, now: datetime, via: str) -> list[DeliveryReport]:
    """0x16 records about broadcasts sent to this terminal; others (local tasks) are not ours."""
    out: list[DeliveryReport] = []
    for rec in recs.records:
        if not state.was_delivered(rec.ebm_id) or rec.end < rec.start:
            continue
        meta = {
            "source": "records",
            "channel": str(rec.channel),
            "started_at": _ts(rec.start),
            "ended_at": _ts(rec.end),
            "front_end": via,
        }
        reason: FailureReason | None = None
        if rec.state == RecordState.BROADCASTING:
            status = DeliveryStatus.PLAYING
        elif rec.state == RecordState.SUCCESS:
            status = DeliveryStatus.PLAYED
        elif rec.state == RecordState.CANCELLED or (
            rec.state == RecordState.FAILED and rec.ebm_id in state.stopped
        ):
            status, reason = DeliveryStatus.CANCELLED, FailureReason.CANCELLED
        elif rec.state == RecordState.FAILED:
            status, reason = DeliveryStatus.FAILED, FailureReason.PLAYBACK_FAILED
        else:
            continue
        out.append(DeliveryReport(rec.ebm_id, state.code, status, now, reason, "", meta))
    return out
