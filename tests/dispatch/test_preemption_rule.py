"""The ordering rule (上级优先、应急优先) as a table, and the simulated terminal's view agreeing with it."""

from __future__ import annotations

import itertools

import pytest

from adapters.ip_speaker.orders import start_payload
from broadcast.dispatch.preemption import SourceLevel, preempts, rank
from broadcast.model import DeliveryOrder, MsgType, Priority, Severity
from sim.ip_playback import terminal_rank
from tests.dispatch.test_dispatch_preemption import T0

P, S, L = Priority, Severity, SourceLevel

# (new, current, preempts?) — each side is (priority, severity, source level or None for the default)
TABLE = [
    ((P.EMERGENCY, S.RED, None), (P.DAILY, S.UNKNOWN, None), True),
    ((P.EMERGENCY, S.BLUE, None), (P.DRILL, S.BLUE, None), True),
    ((P.DRILL, S.BLUE, None), (P.DAILY, S.UNKNOWN, None), True),
    ((P.DAILY, S.UNKNOWN, None), (P.DRILL, S.BLUE, None), False),
    ((P.DRILL, S.RED, None), (P.EMERGENCY, S.BLUE, None), False),  # a drill never cuts off a warning
    ((P.DRILL, S.BLUE, L.UPPER), (P.EMERGENCY, S.BLUE, L.VILLAGE), False),  # not even an upper drill
    ((P.EMERGENCY, S.RED, None), (P.EMERGENCY, S.ORANGE, None), True),
    ((P.EMERGENCY, S.ORANGE, None), (P.EMERGENCY, S.YELLOW, None), True),
    ((P.EMERGENCY, S.YELLOW, None), (P.EMERGENCY, S.BLUE, None), True),
    ((P.EMERGENCY, S.BLUE, None), (P.EMERGENCY, S.UNKNOWN, None), True),
    ((P.EMERGENCY, S.ORANGE, None), (P.EMERGENCY, S.RED, None), False),
    ((P.EMERGENCY, S.RED, None), (P.EMERGENCY, S.RED, None), False),  # equal waits
    ((P.DAILY, S.UNKNOWN, None), (P.DAILY, S.UNKNOWN, None), False),
    ((P.UPPER_EMERGENCY, S.BLUE, None), (P.EMERGENCY, S.RED, None), True),  # 上级优先
    ((P.EMERGENCY, S.RED, None), (P.UPPER_EMERGENCY, S.BLUE, None), False),
    ((P.EMERGENCY, S.BLUE, L.COUNTY), (P.EMERGENCY, S.RED, L.STREET), True),
    ((P.EMERGENCY, S.BLUE, L.STREET), (P.EMERGENCY, S.RED, L.VILLAGE), True),
    ((P.EMERGENCY, S.RED, L.VILLAGE), (P.EMERGENCY, S.BLUE, L.STREET), False),
    ((P.DAILY, S.UNKNOWN, L.COUNTY), (P.DAILY, S.UNKNOWN, L.VILLAGE), True),
    ((P.DRILL, S.BLUE, L.VILLAGE), (P.DAILY, S.UNKNOWN, L.UPPER), True),
    ((P.DRILL, S.RED, None), (P.DRILL, S.BLUE, None), False),  # severity only ranks emergencies
]


@pytest.mark.parametrize(("new", "current", "expected"), TABLE)
def test_rule_table(
    new: tuple[Priority, Severity, SourceLevel | None],
    current: tuple[Priority, Severity, SourceLevel | None],
    expected: bool,
) -> None:
    assert preempts(rank(*new), rank(*current)) is expected


def _order(priority: Priority, severity: Severity) -> DeliveryOrder:
    msg_type = MsgType.TERMINAL_DRILL if priority is Priority.DRILL else MsgType.ACTUAL
    return DeliveryOrder(
        "1" * 35, msg_type, severity, "11B03", priority, T0, T0, "t", "http://x/a.mp3", None
    )


KINDS = [
    (p, s)
    for p in (Priority.DAILY, Priority.DRILL, Priority.EMERGENCY)
    for s in (Severity.RED, Severity.ORANGE, Severity.YELLOW, Severity.BLUE, Severity.UNKNOWN)
]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(KINDS, KINDS)))
def test_terminal_view_agrees_within_one_source_level(
    a: tuple[Priority, Severity], b: tuple[Priority, Severity]
) -> None:
    """What the simulated terminal sees on the wire (broadcast type, level) orders items like the rule."""
    ta, tb = terminal_rank(start_payload(_order(*a))), terminal_rank(start_payload(_order(*b)))
    assert (ta > tb) is preempts(rank(*a), rank(*b))
    assert (ta == tb) is (rank(*a) == rank(*b))
