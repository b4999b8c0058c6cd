"""The adapter contract: every adapter, driven against its own simulator, behaves the same way to the
core. The preemption scenario asserts what each device really does (documented on ``Driver.preemption``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.base import Adapter
from broadcast.messages import FailureKind, Outcome, SendResult
from broadcast.model import DeliveryOrder, DeliveryStatus, FailureReason, Severity
from tests.contract.rigs import DRIVERS, Driver, audio_server
from tests.helpers.poll import until


@pytest.fixture(params=sorted(DRIVERS))
async def driver(request: pytest.FixtureRequest) -> AsyncIterator[Driver]:
    async with audio_server() as base:
        d = DRIVERS[request.param](base)
        await d.start()
        try:
            yield d
        finally:
            await d.close()


async def deliver_until_accepted(d: Driver, order: DeliveryOrder, within_s: float = 5.0) -> list[SendResult]:
    """What the dispatcher does: try again after a RETRY until accepted (polling, with a deadline)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    results: list[SendResult] = []
    while loop.time() < deadline:
        result = await d.adapter.deliver(order, d.code)
        results.append(result)
        if result.outcome is not Outcome.RETRY:
            return results
        d.device_recovers()
        await asyncio.sleep(0.02)
    raise AssertionError(f"never accepted: {results}")


async def test_implements_the_protocol(driver: Driver) -> None:
    assert isinstance(driver.adapter, Adapter)
    assert driver.adapter.name == driver.name
    assert isinstance(driver.adapter.status(), dict)


async def test_deliver_is_accepted_then_playing_then_played(driver: Driver) -> None:
    order = driver.order()
    result = await driver.adapter.deliver(order, driver.code)
    assert result.outcome is Outcome.ACCEPTED, result
    await until(lambda: DeliveryStatus.PLAYING in driver.sink.statuses(order.ebm_id, driver.code))
    await driver.finish(order)
    statuses = driver.sink.statuses(order.ebm_id, driver.code)
    assert statuses.index(DeliveryStatus.PLAYING) < statuses.index(DeliveryStatus.PLAYED)
    assert statuses.count(DeliveryStatus.PLAYED) == 1
    assert driver.completed(order.ebm_id) == 1


async def test_stop_is_confirmed(driver: Driver) -> None:
    order = driver.order(long=True)
    assert (await driver.adapter.deliver(order, driver.code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYING in driver.sink.statuses(order.ebm_id, driver.code))
    result = await driver.adapter.stop(order.ebm_id, driver.code)
    assert result.outcome is Outcome.ACCEPTED, result
    await until(lambda: DeliveryStatus.CANCELLED in driver.sink.statuses(order.ebm_id, driver.code))
    cancelled = [e for e in driver.sink.events if e.status is DeliveryStatus.CANCELLED]
    assert cancelled[-1].reason is FailureReason.CANCELLED
    assert DeliveryStatus.PLAYED not in driver.sink.statuses(order.ebm_id, driver.code)
    assert driver.completed(order.ebm_id) == 0


async def test_transient_failure_is_retry_then_ok(driver: Driver) -> None:
    order = driver.order()
    driver.transient_fault()
    first = await driver.adapter.deliver(order, driver.code)
    assert first.outcome is Outcome.RETRY, first
    assert first.failure is FailureKind.TIMEOUT
    assert first.detail
    second = await driver.adapter.deliver(order, driver.code)
    assert second.outcome is Outcome.ACCEPTED, second
    await driver.finish(order)
    assert driver.completed(order.ebm_id) == 1


async def test_permanent_failure(driver: Driver) -> None:
    order = driver.order()
    driver.permanent_fault()
    result = await driver.adapter.deliver(order, driver.code)
    assert result.outcome is Outcome.PERMANENT, result
    assert result.failure is FailureKind.REJECTED
    assert DeliveryStatus.PLAYING not in driver.sink.statuses(order.ebm_id, driver.code)


async def test_device_restart_mid_broadcast_completes_exactly_once(driver: Driver) -> None:
    order = driver.order(long=True)
    assert (await driver.adapter.deliver(order, driver.code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYING in driver.sink.statuses(order.ebm_id, driver.code))
    await driver.reboot()
    results = await deliver_until_accepted(driver, order)
    assert results[-1].outcome is Outcome.ACCEPTED, results
    await driver.finish(order)
    await until(lambda: driver.completed(order.ebm_id) >= 1)
    assert driver.completed(order.ebm_id) == 1
    assert driver.sink.statuses(order.ebm_id, driver.code).count(DeliveryStatus.PLAYED) == 1


async def test_unknown_terminal_is_permanent(driver: Driver) -> None:
    result = await driver.adapter.deliver(driver.order(), "65301810010010314019999")
    assert result.outcome is Outcome.PERMANENT
    assert result.failure is FailureKind.UNSUPPORTED


async def test_higher_item_preempts_lower_which_resumes_when_redelivered(driver: Driver) -> None:
    """A lower item on air, a higher one delivered: the higher one plays; the lower one ends preempted
    (or is interrupted on the device), and resumes when delivered again after the higher one ended.
    Per-adapter differences are documented on ``Driver.preemption`` in rigs.py."""
    lower = driver.order(long=True, severity=Severity.BLUE, minutes=120)
    higher = driver.order(long=False, severity=Severity.RED, minutes=60)
    code = driver.code
    sim: Any = getattr(driver, "sim", None)  # the device's own ground truth, where it has one
    assert (await driver.adapter.deliver(lower, code)).outcome is Outcome.ACCEPTED
    await until(lambda: DeliveryStatus.PLAYING in driver.sink.statuses(lower.ebm_id, code))
    result = await driver.adapter.deliver(higher, code)
    assert result.outcome is Outcome.ACCEPTED, result
    await until(lambda: DeliveryStatus.PLAYING in driver.sink.statuses(higher.ebm_id, code))
    if driver.preemption == "REPLACES":
        events = driver.sink.events
        cut = [e for e in events if e.ebm_id == lower.ebm_id and e.status is DeliveryStatus.CANCELLED]
        assert [e.reason for e in cut] == [FailureReason.PREEMPTED]
    elif driver.preemption == "CARRIES_ALL":
        assert {lower.ebm_id, higher.ebm_id} <= set(sim.on_air)
    else:
        assert driver.preemption == "INTERRUPTS"
        await until(lambda: any(p.ebm_id == lower.ebm_id and p.ended_at for p in sim.played))
        first = next(p for p in sim.played if p.ebm_id == lower.ebm_id)
        assert not first.completed
        assert DeliveryStatus.FAILED not in driver.sink.statuses(lower.ebm_id, code)
    await driver.finish(higher)
    assert driver.completed(higher.ebm_id) == 1

    resumed = await driver.adapter.deliver(lower, code)
    assert resumed.outcome is Outcome.ACCEPTED, resumed
    await driver.finish(lower)
    assert driver.completed(lower.ebm_id) == 1
    statuses = driver.sink.statuses(lower.ebm_id, code)
    assert statuses.count(DeliveryStatus.PLAYED) == 1
    if driver.preemption == "INTERRUPTS":
        runs = [p for p in sim.played if p.ebm_id == lower.ebm_id]
        (top,) = [p for p in sim.played if p.ebm_id == higher.ebm_id]
        assert [p.completed for p in runs] == [False, True]
        assert top.ended_at is not None and runs[0].ended_at is not None
        assert runs[0].ended_at <= top.started_at  # cut off before the higher one started
        assert runs[1].started_at >= top.ended_at  # never on air at the same time
        assert statuses.count(DeliveryStatus.PLAYING) == 2
    elif driver.preemption == "CARRIES_ALL":
        assert statuses.count(DeliveryStatus.PLAYING) == 1  # still inserted: no second PLAYING
