"""Wire conventions of relaying through a front-end (前端), shared by the adapter and the simulated
front-end. Pure: never does I/O, never reads the clock.

The §4.1 frame already carries a target list, so relaying needs no new business types, only these
conventions (documented once, here):
- Downward, the county sends ONE request frame to a front-end whose targets are the terminals it is
  meant for; the front-end relays the same business data to each terminal (targets = that terminal).
- The front-end answers with one or more response frames carrying the request's session id; each
  response's target list names the terminals the reply applies to (terminals with an identical reply
  share one frame). Every requested target is answered exactly once; a target a front-end cannot reach
  is answered with result 72 (offline), one that did not answer in time with 11 (timeout), one it does
  not serve with 59 (resource code invalid).
- Upward, a terminal's report (0x10 heartbeat, 0x13, 0x14, 0x15, 0x16) is forwarded with the
  front-end's code as source and the terminal's code as the only target. A heartbeat with no target is
  the front-end's own. A heartbeat with work state 4 says the terminal dropped off the front-end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from adapters.ip_speaker.payload_fields import BUSY_RESULTS, ResultCode
from adapters.ip_speaker.payloads import Reply
from broadcast.messages import FailureKind, SendResult

MAX_TARGETS_PER_FRAME = 1000  # 12 B each: stays far below the 65535-byte frame limit

_RETRY: dict[int, FailureKind] = {
    ResultCode.TIMEOUT: FailureKind.TIMEOUT,
    ResultCode.TERMINAL_OFFLINE: FailureKind.NOT_CONNECTED,
    **dict.fromkeys(BUSY_RESULTS, FailureKind.BUSY),
}


def classify_relayed(terminal_code: str, front_end_code: str, reply: Reply) -> SendResult:
    """A terminal's relayed reply as a SendResult (timeouts, offline and busy are worth a retry)."""
    if reply.ok:
        return SendResult.ok(f"经前端 {front_end_code} 转发")
    detail = (
        f"终端 {terminal_code}（经前端 {front_end_code}）拒绝：结果码 {reply.result} {reply.desc}".rstrip()
    )
    failure = _RETRY.get(reply.result)
    if failure is not None:
        return SendResult.retry(failure, detail)
    return SendResult.permanent(FailureKind.REJECTED, detail)


def group_by_body(answers: Mapping[str, bytes]) -> list[tuple[bytes, tuple[str, ...]]]:
    """Targets with byte-identical reply bodies share one response frame (in first-seen order)."""
    groups: dict[bytes, list[str]] = {}
    for code, body in answers.items():
        groups.setdefault(body, []).append(code)
    out: list[tuple[bytes, tuple[str, ...]]] = []
    for body, codes in groups.items():
        for chunk in chunks(codes):
            out.append((body, chunk))
    return out


def chunks(codes: Iterable[str], size: int = MAX_TARGETS_PER_FRAME) -> list[tuple[str, ...]]:
    items = list(codes)
    return [tuple(items[i : i + size]) for i in range(0, len(items), size)]
