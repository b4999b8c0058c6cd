"""What the controller sends an IP loudspeaker for a delivery order: the start-broadcast payload and
the broadcast type an order maps to.

Owns: the mapping from a ``DeliveryOrder`` to a ``StartBroadcast`` payload.
Never: does I/O, reads the clock, keeps state, or decides whether or when to send.
"""

from __future__ import annotations

from adapters.ip_speaker.payload_fields import AUX_URL, BroadcastType
from adapters.ip_speaker.payloads import AuxItem, StartBroadcast
from broadcast.model import DeliveryOrder, Priority, Severity


def broadcast_type_for(order: DeliveryOrder) -> BroadcastType:
    if order.msg_type.is_drill:
        return BroadcastType.ACTUAL_DRILL
    if order.priority == Priority.DAILY:
        return BroadcastType.DAILY
    return BroadcastType.EMERGENCY


def start_payload(order: DeliveryOrder) -> StartBroadcast:
    level = int(order.severity) if Severity.RED <= order.severity <= Severity.BLUE else 0
    event = order.event_type if len(order.event_type) == 5 and order.event_type.isascii() else "11111"
    aux = (AuxItem(AUX_URL, order.audio_url.encode("utf-8")),) if order.audio_url else ()
    return StartBroadcast(
        ebm_id=order.ebm_id,
        broadcast_type=broadcast_type_for(order),
        level=level,
        event_type=event,
        volume=max(0, min(100, order.volume)),
        start=int(order.start_at.timestamp()),
        end=int(order.end_at.timestamp()),
        aux=aux,
    )
