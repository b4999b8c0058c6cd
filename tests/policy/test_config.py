"""The [policy] section: per source, severity and event, read from TOML into the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broadcast.clock import ManualClock
from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef
from broadcast.policy.config import PolicyConfigError, policy_config
from broadcast.policy.engine import PolicyEngine
from broadcast.policy.types import Action, OnTimeout, Origin
from broadcast.settings import load_settings

T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def draft(event: str, severity: Severity, sender: str = "Anning_Meteorological_Observatory") -> MessageDraft:
    return MessageDraft(
        msg_type=MsgType.ACTUAL,
        event_type=event,
        severity=severity,
        sender_name="安宁市气象台",
        sender_code="",
        sent_at=T0,
        start_at=T0,
        end_at=T0 + timedelta(hours=3),
        area_codes=("530181000000",),
        contents=(Content("zho", "标题", "正文"),),
        source=SourceRef(SourceKind.CAP, sender, f"{event}-{severity}-{sender}", T0.isoformat()),
    )


@pytest.mark.parametrize(
    ("event", "severity", "sender", "action", "on_timeout"),
    [
        ("11B03", Severity.RED, "Anning_Meteorological_Observatory", Action.AUTO, None),
        ("11B03", Severity.YELLOW, "Anning_Meteorological_Observatory", Action.HOLD, OnTimeout.RELEASE),
        ("11B03", Severity.BLUE, "Anning_Meteorological_Observatory", Action.HOLD, OnTimeout.EXPIRE),
        # Geological hazards go on air at once at any grade from a trusted source ...
        ("11D01", Severity.BLUE, "Anning_Meteorological_Observatory", Action.AUTO, None),
        # ... but not from a sender nobody configured.
        ("11D01", Severity.BLUE, "Somebody_Else", Action.HOLD, OnTimeout.EXPIRE),
        # Heat waits for an operator even when red; dropped if nobody decides.
        ("11B09", Severity.RED, "12379@cma.gov.cn", Action.HOLD, OnTimeout.EXPIRE),
    ],
)
def test_shipped_policy(
    event: str, severity: Severity, sender: str, action: Action, on_timeout: OnTimeout | None
) -> None:
    cfg = policy_config(load_settings().raw["policy"])
    engine = PolicyEngine(cfg, ManualClock(T0))
    d = draft(event, severity, sender)
    decision = engine.decide(d, (), Origin(SourceKind.CAP, sender))
    assert decision.action is action, decision
    assert decision.on_timeout is on_timeout


def test_heat_rule_window_comes_from_config() -> None:
    cfg = policy_config(load_settings().raw["policy"])
    decision = PolicyEngine(cfg, ManualClock(T0)).decide(
        draft("11B09", Severity.RED), (), Origin(SourceKind.CAP, "Anning_Meteorological_Observatory")
    )
    assert decision.until == T0 + timedelta(minutes=30)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ({"auto_severities": ["purple"]}, "purple"),
        ({"hold_off": {"yellow": {"window_s": 60}}}, "on_timeout"),
        ({"events": {"11D-x": "auto"}}, "11D-x"),
        ({"events": {"11D": "sometimes"}}, "11D"),
    ],
)
def test_bad_policy_config_names_the_problem(raw: dict[str, object], words: str) -> None:
    with pytest.raises(PolicyConfigError) as err:
        policy_config(raw)
    assert words in str(err.value)
