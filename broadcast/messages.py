"""The seam between the core and the adapters (核心与适配器之间的消息): orders go down, reports come up.

The dispatcher sends an adapter *orders* (start a delivery order on a terminal, stop it, adopt one a
terminal acknowledged before a restart); the adapter answers each with a ``SendResult`` — it only
classifies the outcome, the core decides what happens next — and later sends *reports* up through the
``AdapterSink`` (a delivery's progress, a terminal's link state, a heartbeat).

Every value here is a frozen dataclass of plain fields (strings, numbers, enums, aware datetimes, and
the frozen model values they carry) with one JSON form, ``to_json``/``from_json``, so that a broker can
carry them between processes without either side changing.

Imports only ``broadcast.model``. Never does I/O and never reads the clock.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from broadcast.model import (
    AudioRef,
    DeliveryOrder,
    DeliveryStatus,
    FailureReason,
    LinkState,
)

# -- results: how an adapter classifies one order -------------------------------------------------


class Outcome(StrEnum):
    ACCEPTED = "accepted"  # the terminal/system acknowledged the instruction
    RETRY = "retry"  # transient: try again later (timeout, busy, link not up yet)
    PERMANENT = "permanent"  # will not work by retrying (rejected, unsupported, invalid code)


class FailureKind(StrEnum):
    NOT_CONNECTED = "not_connected"
    TIMEOUT = "timeout"
    BUSY = "busy"
    REJECTED = "rejected"
    UNSUPPORTED = "unsupported"
    PROTOCOL = "protocol"
    IO = "io"


@dataclass(frozen=True)
class SendResult:
    """An adapter's classification of one order to one terminal."""

    outcome: Outcome
    failure: FailureKind | None = None
    detail: str = ""

    @classmethod
    def ok(cls, detail: str = "") -> SendResult:
        return cls(Outcome.ACCEPTED, None, detail)

    @classmethod
    def retry(cls, failure: FailureKind, detail: str = "") -> SendResult:
        return cls(Outcome.RETRY, failure, detail)

    @classmethod
    def permanent(cls, failure: FailureKind, detail: str = "") -> SendResult:
        return cls(Outcome.PERMANENT, failure, detail)


# -- orders: down, from the dispatcher to an adapter -----------------------------------------------


@dataclass(frozen=True)
class Start:
    """Put ``order`` on air at one terminal."""

    order: DeliveryOrder
    terminal_code: str


@dataclass(frozen=True)
class Stop:
    """Take a broadcast off the air at one terminal."""

    ebm_id: str
    terminal_code: str


@dataclass(frozen=True)
class Adopt:
    """After a controller restart: the terminal acknowledged ``order`` before it. Expect its reports
    (and end it on time) without sending it again."""

    order: DeliveryOrder
    terminal_code: str


Order = Start | Stop | Adopt


# -- reports: up, from an adapter to the core ------------------------------------------------------


@dataclass(frozen=True)
class DeliveryReport:
    """One status change of one delivery, as reported by an adapter or decided by the dispatcher."""

    ebm_id: str
    terminal_code: str
    status: DeliveryStatus
    at: datetime
    reason: FailureReason | None = None
    detail: str = ""
    meta: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class LinkReport:
    """A terminal's (or front-end's, transmitter's) link state as its adapter sees it now."""

    terminal_code: str
    state: LinkState
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class HeartbeatReport:
    """A sign of life that changes no state: refreshes the terminal's last-seen time."""

    terminal_code: str
    at: datetime


Report = DeliveryReport | LinkReport | HeartbeatReport


# -- the one JSON form -----------------------------------------------------------------------------

_KINDS: dict[str, type[Any]] = {
    cls.__name__: cls
    for cls in (Start, Stop, Adopt, DeliveryReport, LinkReport, HeartbeatReport, SendResult)
}
_VALUES: dict[str, type[Any]] = {cls.__name__: cls for cls in (DeliveryOrder, AudioRef)}


class MessageError(ValueError):
    """A JSON document that is not one of this seam's messages; the text names the field."""


def to_json(msg: Order | Report | SendResult) -> dict[str, Any]:
    """The JSON-ready dict of a message, tagged with its kind."""
    if type(msg).__name__ not in _KINDS:
        raise TypeError(f"{type(msg).__name__} is not a message of the adapter seam")
    return {"kind": type(msg).__name__, **_fields(msg)}


def from_json(data: dict[str, Any]) -> Order | Report | SendResult:
    """The message a ``to_json`` dict describes; raises MessageError naming what is wrong."""
    cls = _KINDS.get(str(data.get("kind")))
    if cls is None:
        raise MessageError(f"unknown message kind {data.get('kind')!r}")
    value: Order | Report | SendResult = _build(cls, data, cls.__name__)
    return value


def _fields(value: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}


def _plain(v: Any) -> Any:
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, datetime):
        if v.tzinfo is None:
            raise ValueError("messages carry aware datetimes only")
        return v.isoformat()
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return _fields(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    return v


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise MessageError(f"{where}.{f.name} is missing")
            continue
        kwargs[f.name] = _typed(hints[f.name], data[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _typed(tp: Any, raw: Any, where: str) -> Any:
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        if raw is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _typed(inner, raw, where)
    try:
        if isinstance(tp, type) and issubclass(tp, Enum):
            return tp(raw)
        if tp is datetime:
            at = datetime.fromisoformat(raw)
            if at.tzinfo is None:
                raise ValueError("no time zone")
            return at
        if isinstance(tp, type) and tp.__name__ in _VALUES:
            return _build(tp, raw, where)
        if typing.get_origin(tp) is dict:
            return {str(k): str(v) for k, v in dict(raw).items()}
        if tp in (str, int, float):
            if not isinstance(raw, int | float | str) or isinstance(raw, bool):
                raise ValueError(f"expected {tp.__name__}")
            return tp(raw)
    except (TypeError, ValueError) as exc:
        raise MessageError(f"{where}: {exc}") from exc
    raise MessageError(f"{where}: unsupported type {tp!r}")

