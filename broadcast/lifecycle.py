"""Allowed state transitions of broadcasts and deliveries, and the one function that applies them.

Owns the transition tables (GOV.UK Emergency Alerts style): anything not listed is refused. Never
touches storage; the store records what this module allows.
"""

from __future__ import annotations

from broadcast.model import BroadcastState as B
from broadcast.model import DeliveryStatus as D

ALLOWED_TRANSITIONS: dict[B, frozenset[B]] = {
    B.RECEIVED: frozenset({B.PENDING_APPROVAL, B.RENDERING, B.REJECTED, B.CANCELLED, B.EXPIRED}),
    B.PENDING_APPROVAL: frozenset({B.RENDERING, B.REJECTED, B.CANCELLED, B.EXPIRED}),
    B.RENDERING: frozenset({B.BROADCASTING, B.FAILED, B.CANCELLED, B.EXPIRED}),
    B.BROADCASTING: frozenset({B.COMPLETED, B.CANCELLED, B.EXPIRED, B.FAILED}),
    B.COMPLETED: frozenset({B.CANCELLED}),  # a cancel after completion still stops late joiners
    B.REJECTED: frozenset(),
    B.CANCELLED: frozenset(),
    B.EXPIRED: frozenset(),
    B.FAILED: frozenset(),
}

# → QUEUED (reason preempted): the dispatcher took the terminal for a higher-ranked item; the delivery
# waits to resume (broadcast/preemption.py). QUEUED → PLAYED: the terminal had in fact finished it.
DELIVERY_TRANSITIONS: dict[D, frozenset[D]] = {
    D.QUEUED: frozenset({D.SENT, D.OFFLINE, D.CANCELLED, D.FAILED, D.PLAYED}),
    D.SENT: frozenset({D.SENT, D.ACKNOWLEDGED, D.PLAYING, D.PLAYED, D.FAILED, D.OFFLINE, D.CANCELLED}),
    D.ACKNOWLEDGED: frozenset({D.PLAYING, D.PLAYED, D.FAILED, D.CANCELLED, D.QUEUED}),
    D.PLAYING: frozenset({D.PLAYED, D.FAILED, D.CANCELLED, D.QUEUED}),
    # An offline terminal that reconnects before the message's end time is tried again.
    D.OFFLINE: frozenset({D.SENT, D.FAILED, D.CANCELLED}),
    D.PLAYED: frozenset(),
    D.FAILED: frozenset(),
    D.CANCELLED: frozenset(),
}


class TransitionError(ValueError):
    def __init__(self, what: str, ident: str, current: str, target: str) -> None:
        super().__init__(f"{what} {ident}: transition {current} → {target} is not allowed")
        self.ident = ident
        self.current = current
        self.target = target


def check_broadcast(ident: str, current: B, target: B) -> None:
    if target not in ALLOWED_TRANSITIONS[current]:
        raise TransitionError("broadcast", ident, current, target)


def delivery_allows(current: D, target: D) -> bool:
    return target in DELIVERY_TRANSITIONS[current]
