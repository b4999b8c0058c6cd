"""Reads the ``[policy]`` section of the configuration into a PolicyConfig. Owns validation and the
Chinese error messages of that section; never decides anything itself."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from broadcast.model import Severity
from broadcast.policy.types import HoldRule, OnTimeout, PolicyConfig

_SEVERITY_WORDS = {
    "red": Severity.RED,
    "orange": Severity.ORANGE,
    "yellow": Severity.YELLOW,
    "blue": Severity.BLUE,
    "unknown": Severity.UNKNOWN,
}


class PolicyConfigError(ValueError):
    pass


def _severity(word: str) -> Severity:
    try:
        return _SEVERITY_WORDS[word]
    except KeyError:
        raise PolicyConfigError(
            f"[policy] 中的级别 {word!r} 无效，应为 red/orange/yellow/blue/unknown 之一"
        ) from None


def _hold(where: str, raw: Mapping[str, Any]) -> HoldRule:
    try:
        window = timedelta(seconds=float(raw["window_s"]))
        on_timeout = OnTimeout(str(raw["on_timeout"]))
    except (KeyError, ValueError) as exc:
        raise PolicyConfigError(
            f"{where} 需要 window_s（秒）和 on_timeout（release 或 expire）：{exc}"
        ) from None
    return HoldRule(window, on_timeout)


def policy_config(raw: Mapping[str, Any]) -> PolicyConfig:
    defaults = PolicyConfig()
    hold_raw = raw.get("hold_off")
    hold_off = (
        {_severity(k): _hold(f"[policy.hold_off.{k}]", v) for k, v in hold_raw.items()}
        if isinstance(hold_raw, Mapping)
        else defaults.hold_off
    )
    return PolicyConfig(
        trusted_cap_senders=frozenset(str(s) for s in raw.get("trusted_cap_senders", ())),
        trust_upper=bool(raw.get("trust_upper", defaults.trust_upper)),
        auto_severities=frozenset(_severity(str(s)) for s in raw["auto_severities"])
        if "auto_severities" in raw
        else defaults.auto_severities,
        hold_off=hold_off,
        untrusted_hold=_hold("[policy.untrusted_hold]", raw["untrusted_hold"])
        if "untrusted_hold" in raw
        else defaults.untrusted_hold,
        two_person_approval=bool(raw.get("two_person_approval", defaults.two_person_approval)),
        park_timeout=timedelta(
            seconds=float(raw.get("park_timeout_s", defaults.park_timeout.total_seconds()))
        ),
        event_rules=_event_rules(raw.get("events", {})),
    )


def _event_rules(raw: Mapping[str, Any]) -> dict[str, HoldRule | str]:
    out: dict[str, HoldRule | str] = {}
    for prefix, rule in raw.items():
        if not prefix or len(prefix) > 5 or not prefix.isalnum():
            raise PolicyConfigError(
                f"[policy.events] 的事件代码前缀 {prefix!r} 无效，应为 1–5 位，如 11D 或 11B03"
            )
        if rule == "auto":
            out[prefix] = "auto"
        elif isinstance(rule, Mapping):
            out[prefix] = _hold(f"[policy.events.{prefix}]", rule)
        else:
            raise PolicyConfigError(
                f'[policy.events] 中 {prefix} 应为 "auto" 或含 window_s 与 on_timeout 的表'
            )
    return out
