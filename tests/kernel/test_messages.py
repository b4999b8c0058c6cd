"""The adapter seam's messages are plain values: every order, result and report survives its JSON form
(through real JSON text) unchanged, and a document that is not one of them is refused naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from broadcast.messages import (
    Adopt,
    DeliveryReport,
    FailureKind,
    HeartbeatReport,
    LinkReport,
    MessageError,
    SendResult,
    Start,
    Stop,
    from_json,
    to_json,
)
from broadcast.model import (
    AudioRef,
    DeliveryOrder,
    DeliveryStatus,
    FailureReason,
    LinkState,
    MsgType,
    Priority,
    Severity,
)

T0 = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)
EBM = "10653018100000000000000202612080001"
CODE = "06530181001001010101001"


def order(audio: AudioRef | None) -> DeliveryOrder:
    return DeliveryOrder(
        ebm_id=EBM,
        msg_type=MsgType.ACTUAL,
        severity=Severity.RED,
        event_type="11B03",
        priority=Priority.UPPER_EMERGENCY,
        start_at=T0,
        end_at=T0 + timedelta(hours=1),
        title="安宁市气象台发布暴雨红色预警",
        audio_url="http://127.0.0.1:8080/audio/live/x.mp3",
        audio=audio,
        volume=80,
    )


MESSAGES = [
    Start(order(None), CODE),
    Start(order(AudioRef("ab" * 32, "mp3", 61.5, engine="espeak", voice="cmn")), CODE),
    Stop(EBM, CODE),
    Adopt(order(None), CODE),
    SendResult.ok("结果码 0"),
    SendResult.retry(FailureKind.BUSY, "结果码 31 终端忙"),
    SendResult.permanent(FailureKind.REJECTED),
    DeliveryReport(EBM, CODE, DeliveryStatus.PLAYING, T0),
    DeliveryReport(EBM, CODE, DeliveryStatus.FAILED, T0, FailureReason.PLAYBACK_FAILED, "音频获取失败"),
    LinkReport(CODE, LinkState.ONLINE, T0.astimezone(timezone(timedelta(hours=8))), "首次注册"),
    HeartbeatReport(CODE, T0),
]


@pytest.mark.parametrize("msg", MESSAGES, ids=lambda m: type(m).__name__)
def test_round_trip_through_json_text(msg: object) -> None:
    text = json.dumps(to_json(msg), ensure_ascii=False)  # type: ignore[arg-type]
    back = from_json(json.loads(text))
    assert back == msg and type(back) is type(msg)


def test_report_meta_travels_too() -> None:
    report = DeliveryReport(EBM, CODE, DeliveryStatus.PLAYED, T0, meta={"duration_s": "61"})
    back = from_json(json.loads(json.dumps(to_json(report))))
    assert isinstance(back, DeliveryReport) and back.meta == {"duration_s": "61"}


@pytest.mark.parametrize(
    ("doc", "says"),
    [
        ({"kind": "Nope"}, "unknown message kind"),
        ({"kind": "Stop", "ebm_id": EBM}, "Stop.terminal_code is missing"),
        ({"kind": "HeartbeatReport", "terminal_code": CODE, "at": "2026-12-08T03:00:00"}, "HeartbeatReport.at"),
        (
            {"kind": "LinkReport", "terminal_code": CODE, "state": "sleepy", "at": T0.isoformat()},
            "LinkReport.state",
        ),
        ({"kind": "Start", "terminal_code": CODE, "order": {"ebm_id": EBM}}, "Start.order.msg_type is missing"),
    ],
)
def test_what_is_not_a_message_is_refused_by_field(doc: dict[str, object], says: str) -> None:
    with pytest.raises(MessageError, match=says.replace(".", r"\.")):
        from_json(doc)


def test_naive_times_never_leave() -> None:
    with pytest.raises(ValueError, match="aware"):
        to_json(HeartbeatReport(CODE, datetime(2026, 12, 8, 3, 0)))
    with pytest.raises(TypeError):
        to_json(order(None))  # type: ignore[arg-type]  # a model value, not a message of the seam
