"""The outbound queue: survives a restart, delivers each packet exactly once, backs off, stops on refusal."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import aiohttp
from upper_helpers import COUNTY_CERT_SN, COUNTY_KEY, START

from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.interconnect.ebd.ids import EbdIdAllocator
from broadcast.interconnect.ebd.model import ConnectionCheck, EBRPSState, ResourceState, ResultCode
from broadcast.interconnect.ebd.signing import Signer, Verifier
from broadcast.interconnect.outbox import OUTBOX_BACKOFF, Outbox, OutboxSettings, OutboxState
from broadcast.interconnect.upper import last_issued_serial
from broadcast.interconnect.upper_boundary import PacketMaker, UpwardQueue
from broadcast.retry import RetryPolicy
from broadcast.store.db import make_engine, prepare_schema
from sim.upper_platform import PROVINCE, PROVINCE_CERT_SN, ProvincePlatform
from terminals.inventory import default_inventory

COUNTY = default_inventory().platform_code


async def _process(
    db: Path, clock: ManualClock, session: aiohttp.ClientSession, province: ProvincePlatform, seed: int = 1
) -> tuple[UpwardQueue, object]:
    """One 'process' of the county: engine, tables, allocator restored from the database, outbox."""
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await prepare_schema(engine, feature_tables())
    outbox = Outbox(
        engine,
        session,
        clock,
        verifier=Verifier({PROVINCE_CERT_SN: province.key.public_key()}),
        settings=OutboxSettings(backoff=replace(OUTBOX_BACKOFF, initial_s=5, max_s=60)),
        rng=random.Random(seed),
    )
    ids = EbdIdAllocator(COUNTY, clock, last_serial=await last_issued_serial(engine, outbox, COUNTY))
    maker = PacketMaker(COUNTY, Signer(COUNTY_KEY, COUNTY_CERT_SN, clock=clock), ids, clock)
    return UpwardQueue(maker, outbox), engine


def _report(i: int, clock: ManualClock) -> EBRPSState:
    return EBRPSState((ResourceState(COUNTY, 1, clock.now(), f"report {i}"),))


async def test_outbox_survives_restart_and_delivers_exactly_once(tmp_path: Path) -> None:
    clock = ManualClock(START)
    province = ProvincePlatform(COUNTY, COUNTY_KEY.public_key(), COUNTY_CERT_SN, clock=clock)
    await province.start()
    db = tmp_path / "county.db"
    try:
        async with aiohttp.ClientSession() as session:
            upward, engine = await _process(db, clock, session, province)
            province.go_offline()
            for i in range(3):
                assert await upward.queue(f"r:{i}", _report(i, clock), dest_ebrid=PROVINCE, url=province.url)
            assert not await upward.queue("r:0", _report(0, clock), dest_ebrid=PROVINCE, url=province.url)
            assert await upward.outbox.deliver_due() == 0
            pending = await upward.outbox.items(OutboxState.PENDING)
            # one dead destination costs one attempt per round, not one per packet
            assert [p.attempts for p in pending] == [1, 0, 0]
            first_ids = [p.message_id for p in pending]
            province.go_online()
            # the two that were skipped are still due; the first waits for its backoff — then the "crash"
            assert await upward.outbox.deliver_due() == 2
            await engine.dispose()  # type: ignore[attr-defined]

            upward2, engine2 = await _process(db, clock, session, province)
            assert not await upward2.queue("r:1", _report(1, clock), dest_ebrid=PROVINCE, url=province.url)
            assert await upward2.outbox.deliver_due() == 0  # the first is not due yet
            clock.advance(10)
            assert await upward2.outbox.deliver_due() == 1
            assert await upward2.outbox.deliver_due(clock.now() + timedelta(hours=1)) == 0
            assert sorted(province.accepted) == sorted(first_ids)
            assert set(province.accepted.values()) == {1}
            # the restarted allocator continues the serial: no EBDID is reused
            assert await upward2.queue("r:3", _report(3, clock), dest_ebrid=PROVINCE, url=province.url)
            newest = (await upward2.outbox.items(OutboxState.PENDING))[0].message_id
            assert newest > max(first_ids)
            await engine2.dispose()  # type: ignore[attr-defined]
        assert province.violations == []
    finally:
        await province.close()


async def test_backoff_is_jittered_and_refusals_are_final(tmp_path: Path) -> None:
    clock = ManualClock(START)
    province = ProvincePlatform(COUNTY, COUNTY_KEY.public_key(), COUNTY_CERT_SN, clock=clock)
    await province.start()
    try:
        async with aiohttp.ClientSession() as session:
            upward, engine = await _process(tmp_path / "c.db", clock, session, province)
            await upward.queue("a", _report(1, clock), dest_ebrid=PROVINCE, url=province.url)
            province.reject_next(1, ResultCode.OTHER_ERROR)  # 5: the peer's own trouble → retry
            assert await upward.outbox.deliver_due() == 0
            (item,) = await upward.outbox.items(OutboxState.PENDING)
            delay = (item.next_attempt_at - clock.now()).total_seconds()
            assert 2.5 <= delay <= 5.0
            assert await upward.outbox.deliver_due() == 0  # not due yet: nothing is sent
            assert len(province.received) == 1
            clock.advance(delay)
            assert await upward.outbox.deliver_due() == 1
            assert province.accepted[item.message_id] == 1

            await upward.queue("b", _report(2, clock), dest_ebrid=PROVINCE, url=province.url)
            province.reject_next(1, ResultCode.CONTENT_MISSING)  # 3: resending cannot help
            assert await upward.outbox.deliver_due() == 0
            (refused,) = await upward.outbox.items(OutboxState.REFUSED)
            assert refused.result_code == 3
            clock.advance(3600)
            assert await upward.outbox.deliver_due() == 0

            await upward.queue("c", _report(3, clock), dest_ebrid=PROVINCE, url="http://127.0.0.1:1/none")
            assert await upward.outbox.deliver_due() == 0
            clock.advance(25 * 3600)
            assert await upward.outbox.deliver_due() == 0
            (expired,) = await upward.outbox.items(OutboxState.EXPIRED)
            assert expired.logical_key == "c"
            await engine.dispose()  # type: ignore[attr-defined]
    finally:
        await province.close()


def test_retry_policy_grows_and_caps() -> None:
    policy = replace(OUTBOX_BACKOFF, initial_s=5, max_s=60)
    rng = random.Random(7)
    delays = [policy.delay(n, rng) for n in range(1, 8)]
    assert all(
        0.5 * min(60, 5 * 2 ** (n - 1)) <= d <= min(60, 5 * 2 ** (n - 1)) for n, d in enumerate(delays, 1)
    )
    assert max(delays) <= 60


def test_outbox_backoff_draws_the_same_delays_as_before() -> None:
    """The product's RetryPolicy with the outbox's parameters: 5 s doubling to 300 s, 50–100 % jitter —
    the delay the outbox's own formula gave, draw for draw."""
    assert OUTBOX_BACKOFF == RetryPolicy(initial_s=5.0, max_s=300.0, factor=2.0, jitter=(0.5, 1.0))
    assert OutboxSettings() == OutboxSettings(OUTBOX_BACKOFF, max_age_s=86400.0, timeout_s=10.0)
    ours, theirs = random.Random(3), random.Random(3)
    for attempts in range(1, 12):
        base = min(300.0, 5.0 * 2 ** (attempts - 1))
        assert OUTBOX_BACKOFF.delay(attempts, ours) == base * (0.5 + 0.5 * theirs.random())


async def test_heartbeat_packet_uses_constant_id() -> None:
    clock = ManualClock(START)
    ids = EbdIdAllocator(COUNTY, clock)
    maker = PacketMaker(COUNTY, Signer(COUNTY_KEY, COUNTY_CERT_SN, clock=clock), ids, clock)
    out = maker.make(ConnectionCheck(clock.now()), PROVINCE)
    assert out.ebd_id == "01" + COUNTY + "0" * 16
