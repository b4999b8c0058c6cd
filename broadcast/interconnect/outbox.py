"""The outbound queue (发送队列) towards upper platforms and the media centre: durable, retried, idempotent.

Owns the `interconnect_outbox` table (on the shared metadata; the composition root's `prepare_schema`
creates it), enqueueing a packet under a *logical key* (the same logical report is never queued twice),
and delivering due packets with one injected aiohttp.ClientSession: EBD packets as multipart/form-data
(field "file", a tar) acknowledged by an EBDResponse ResultCode 0/1; JSON documents acknowledged by any
HTTP 2xx. Failures are classified (`DeliveryFault`) and retried, with the delay of the product's one
`RetryPolicy` under the outbox's own parameters (`OutboxSettings`), until acknowledged, refused for good
(ResultCode 2/3/4, HTTP 4xx for JSON) or too old.

Must never create its table, build or sign packets itself, open an HTTP session of its own, read the
system clock (time is passed in or comes from the injected clock) or sleep in `deliver_due`; only `run()`
waits, between rounds.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import aiohttp
from sqlalchemy import (
    Column,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.interconnect.ebd.model import EbdError, EBDResponse, ResultCode
from broadcast.interconnect.ebd.package import tar_name, unpack_ebdt
from broadcast.interconnect.ebd.signing import Verifier, VerifyResult
from broadcast.retry import RetryPolicy
from broadcast.store.tables import UtcDateTime, metadata

log = logging.getLogger(__name__)

outbox_table = Table(
    "interconnect_outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("logical_key", String(200), nullable=False, unique=True),
    Column("message_id", String(64), nullable=False, unique=True),  # EBDID, or a JSON document id
    Column("kind", String(8), nullable=False),  # PayloadKind
    Column("dest_url", Text, nullable=False),
    Column("dest_id", String(64), nullable=False, default=""),
    Column("label", String(40), nullable=False, default=""),  # EBDType or JSON document type
    Column("payload", LargeBinary, nullable=False),
    Column("state", String(12), nullable=False, index=True),  # OutboxState
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UtcDateTime, nullable=False),
    Column("next_attempt_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Column("result_code", Integer, nullable=True),
    Column("last_error", Text, nullable=False, default=""),
)


class PayloadKind(StrEnum):
    EBD = "ebd"  # an EBDT tar, POSTed as multipart/form-data
    JSON = "json"  # a JSON document (media centre)


class OutboxState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    REFUSED = "refused"  # the peer refused it for good; resending the same bytes cannot help
    EXPIRED = "expired"  # never acknowledged within max_age


class DeliveryFault(StrEnum):
    CONNECT = "connect"  # connection refused, DNS, reset
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"  # non-2xx
    BAD_RESPONSE = "bad_response"  # no readable EBDResponse in the reply
    BAD_SIGNATURE = "bad_signature"  # the EBDResponse signature is present but wrong
    RETRY_LATER = "retry_later"  # ResultCode 5: the peer had a problem of its own
    REFUSED = "refused"  # ResultCode 2/3/4 or HTTP 4xx: final


@dataclass(frozen=True)
class DeliveryOutcome:
    acknowledged: bool
    fault: DeliveryFault | None = None
    detail: str = ""
    result_code: int | None = None

    @property
    def final(self) -> bool:
        return self.acknowledged or self.fault is DeliveryFault.REFUSED


OUTBOX_BACKOFF = RetryPolicy(initial_s=5.0, max_s=300.0, factor=2.0, jitter=(0.5, 1.0))
"""The outbox's backoff: 5 s doubling to at most 300 s, each delay drawn from 50–100 % of that."""


@dataclass(frozen=True)
class OutboxSettings:
    """How the outbox retries (``[interconnect.retry]``): the backoff between attempts, how long a packet
    may stay unacknowledged before it expires, and how long one POST may take."""

    backoff: RetryPolicy = OUTBOX_BACKOFF
    max_age_s: float = 24 * 3600.0
    timeout_s: float = 10.0


@dataclass(frozen=True)
class OutboxItem:
    id: int
    logical_key: str
    message_id: str
    kind: PayloadKind
    dest_url: str
    dest_id: str
    label: str
    state: OutboxState
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    result_code: int | None
    last_error: str


def _item(row: object) -> OutboxItem:
    m = row._mapping  # type: ignore[attr-defined]
    return OutboxItem(
        id=int(m["id"]),
        logical_key=m["logical_key"],
        message_id=m["message_id"],
        kind=PayloadKind(m["kind"]),
        dest_url=m["dest_url"],
        dest_id=m["dest_id"],
        label=m["label"],
        state=OutboxState(m["state"]),
        attempts=int(m["attempts"]),
        created_at=m["created_at"],
        next_attempt_at=m["next_attempt_at"],
        result_code=m["result_code"],
        last_error=m["last_error"],
    )


class Outbox:
    """Durable outbound queue. `deliver_due(now)` does one delivery round; `run()` loops until closed."""

    def __init__(
        self,
        engine: AsyncEngine,
        session: aiohttp.ClientSession,
        clock: Clock,
        *,
        verifier: Verifier | None = None,
        settings: OutboxSettings | None = None,
        rng: random.Random | None = None,
        poll_interval_s: float = 1.0,
        json_headers: Callable[[str], dict[str, str]] | None = None,
    ) -> None:
        self._engine = engine
        self._session = session
        self._clock = clock
        self._verifier = verifier
        self.settings = settings or OutboxSettings()
        self._rng = rng or random.Random()
        self._poll = poll_interval_s
        self._json_headers = json_headers
        self._wake = asyncio.Event()
        self._round = asyncio.Lock()
        self._closed = False

    # ---- queueing ------------------------------------------------------------------------------

    async def has_key(self, logical_key: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.execute(
                select(outbox_table.c.id).where(outbox_table.c.logical_key == logical_key)
            )
            return found.first() is not None

    async def enqueue(
        self,
        logical_key: str,
        *,
        message_id: str,
        dest_url: str,
        payload: bytes,
        kind: PayloadKind = PayloadKind.EBD,
        dest_id: str = "",
        label: str = "",
        not_before: datetime | None = None,
    ) -> bool:
        """Queue a packet; False (and nothing queued) when this logical key or message id is already known."""
        now = self._clock.now()
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(outbox_table).values(
                        logical_key=logical_key,
                        message_id=message_id,
                        kind=kind.value,
                        dest_url=dest_url,
                        dest_id=dest_id,
                        label=label,
                        payload=payload,
                        state=OutboxState.PENDING.value,
                        attempts=0,
                        created_at=now,
                        next_attempt_at=not_before or now,
                        last_error="",
                    )
                )
        except IntegrityError:
            return False
        self._wake.set()
        return True

    def wake(self) -> None:
        self._wake.set()

    async def items(self, state: OutboxState | None = None) -> list[OutboxItem]:
        query = select(outbox_table).order_by(outbox_table.c.id)
        if state is not None:
            query = query.where(outbox_table.c.state == state.value)
        async with self._engine.connect() as conn:
            return [_item(r) for r in await conn.execute(query)]

    async def issued_ids(self, prefix: str) -> list[str]:
        """Message ids starting with `prefix` (to restore the EBDID serial after a restart)."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(outbox_table.c.message_id).where(outbox_table.c.message_id.like(prefix + "%"))
            )
            return [r[0] for r in rows]

    # ---- delivery -------------------------------------------------------------------------------

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Try every due pending packet once (oldest first); returns how many were acknowledged.

        A destination that fails is skipped for the rest of the round so one dead peer costs one timeout.
        """
        async with self._round:
            now = now or self._clock.now()
            async with self._engine.connect() as conn:
                rows = (
                    await conn.execute(
                        select(outbox_table)
                        .where(outbox_table.c.state == OutboxState.PENDING.value)
                        .where(outbox_table.c.next_attempt_at <= now)
                        .order_by(outbox_table.c.id)
                        .limit(500)
                    )
                ).all()
            acknowledged = 0
            dead: set[str] = set()
            for row in rows:
                item = _item(row)
                if item.dest_url in dead:
                    continue
                if (now - item.created_at).total_seconds() > self.settings.max_age_s:
                    await self._finish(item, OutboxState.EXPIRED, now, None, "never acknowledged in time")
                    log.warning(
                        "outbox: %s %s to %s expired after %d attempts",
                        item.label,
                        item.message_id,
                        item.dest_url,
                        item.attempts,
                    )
                    continue
                outcome = await self._post(item, row._mapping["payload"])
                if outcome.acknowledged:
                    acknowledged += 1
                    await self._finish(item, OutboxState.DELIVERED, now, outcome.result_code, "")
                elif outcome.fault is DeliveryFault.REFUSED:
                    await self._finish(item, OutboxState.REFUSED, now, outcome.result_code, outcome.detail)
                    log.error(
                        "outbox: %s %s refused by %s: %s",
                        item.label,
                        item.message_id,
                        item.dest_url,
                        outcome.detail,
                    )
                else:
                    dead.add(item.dest_url)
                    await self._retry_later(item, now, outcome)
            return acknowledged

    async def _finish(
        self, item: OutboxItem, state: OutboxState, now: datetime, code: int | None, error: str
    ) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item.id)
                .values(
                    state=state.value,
                    finished_at=now,
                    attempts=item.attempts + 1,
                    result_code=code,
                    last_error=error,
                )
            )

    async def _retry_later(self, item: OutboxItem, now: datetime, outcome: DeliveryOutcome) -> None:
        attempts = item.attempts + 1
        delay = self.settings.backoff.delay(attempts, self._rng)
        if attempts == 1:
            log.info(
                "outbox: %s %s to %s not delivered (%s: %s); retrying",
                item.label,
                item.message_id,
                item.dest_url,
                outcome.fault,
                outcome.detail,
            )
        async with self._engine.begin() as conn:
            await conn.execute(
                update(outbox_table)
                .where(outbox_table.c.id == item.id)
                .values(
                    attempts=attempts,
                    next_attempt_at=now + timedelta(seconds=delay),
                    result_code=outcome.result_code,
                    last_error=f"{outcome.fault}: {outcome.detail}"[:2000],
                )
            )

    async def _post(self, item: OutboxItem, payload: bytes) -> DeliveryOutcome:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        try:
            if item.kind is PayloadKind.EBD:
                return await post_ebd(
                    self._session,
                    item.dest_url,
                    item.message_id,
                    payload,
                    timeout=timeout,
                    verifier=self._verifier,
                )
            headers = {"Content-Type": "application/json", "Idempotency-Key": item.message_id}
            if self._json_headers is not None:
                headers.update(self._json_headers(item.dest_url))
            async with self._session.post(
                item.dest_url, data=payload, headers=headers, timeout=timeout
            ) as resp:
                await resp.read()
                if 200 <= resp.status < 300:
                    return DeliveryOutcome(True)
                fault = (
                    DeliveryFault.REFUSED
                    if 400 <= resp.status < 500 and resp.status not in (408, 429)
                    else DeliveryFault.HTTP_STATUS
                )
                return DeliveryOutcome(False, fault, f"HTTP {resp.status}")
        except TimeoutError:
            return DeliveryOutcome(
                False, DeliveryFault.TIMEOUT, f"no answer within {self.settings.timeout_s:g} s"
            )
        except aiohttp.ClientError as exc:
            return DeliveryOutcome(False, DeliveryFault.CONNECT, f"{type(exc).__name__}: {exc}")

    # ---- loop -------------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until `close()`: a round on every enqueue and at least every poll interval."""
        while not self._closed:
            try:
                await self.deliver_due()
            except Exception:
                log.exception("outbox delivery round failed")
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except TimeoutError:
                pass

    def close(self) -> None:
        self._closed = True
        self._wake.set()


async def post_ebd(
    session: aiohttp.ClientSession,
    url: str,
    ebd_id: str,
    tar: bytes,
    *,
    timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's own per-request timeout
    verifier: Verifier | None = None,
) -> DeliveryOutcome:
    """POST one EBDT tar as multipart/form-data and classify the synchronous EBDResponse.

    Raises aiohttp.ClientError / TimeoutError for transport failures (callers classify those).
    """
    form = aiohttp.FormData()
    form.add_field("file", tar, filename=tar_name(ebd_id), content_type="application/x-tar")
    async with session.post(url, data=form, timeout=timeout) as resp:
        body = await resp.read()
        if resp.status != 200:
            return DeliveryOutcome(False, DeliveryFault.HTTP_STATUS, f"HTTP {resp.status}")
    return classify_response(body, ebd_id, verifier)


def classify_response(body: bytes, ebd_id: str, verifier: Verifier | None) -> DeliveryOutcome:
    try:
        pkg = unpack_ebdt(body)
    except EbdError as exc:
        return DeliveryOutcome(False, DeliveryFault.BAD_RESPONSE, f"reply is not an EBD package: {exc}")
    answer = pkg.ebd.body
    if not isinstance(answer, EBDResponse):
        return DeliveryOutcome(
            False, DeliveryFault.BAD_RESPONSE, f"reply is {pkg.ebd.ebd_type}, not EBDResponse"
        )
    if verifier is not None and pkg.signature_xml is not None:
        result = verifier.verify(pkg.ebdb, pkg.signature_xml, ebd_id=pkg.ebd_id)
        if result is not VerifyResult.OK:
            return DeliveryOutcome(False, DeliveryFault.BAD_SIGNATURE, f"EBDResponse signature: {result}")
    related = pkg.ebd.header.related_ebd_id
    if related is not None and related != ebd_id:
        return DeliveryOutcome(
            False, DeliveryFault.BAD_RESPONSE, f"EBDResponse answers {related}, not {ebd_id}"
        )
    code = answer.result_code
    if code in (ResultCode.OK, ResultCode.RECEIVED):
        return DeliveryOutcome(True, result_code=int(code))
    if code is ResultCode.OTHER_ERROR:
        return DeliveryOutcome(False, DeliveryFault.RETRY_LATER, answer.result_desc, int(code))
    return DeliveryOutcome(
        False, DeliveryFault.REFUSED, f"ResultCode {int(code)}: {answer.result_desc}", int(code)
    )
