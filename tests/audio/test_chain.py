"""EngineChain: order, back-off on an injected clock, recovery, and the last-resort rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broadcast.audio.engines import AllEnginesFailed, EngineChain, Speech, SpeechFormat, TtsError, TtsFailure
from broadcast.clock import ManualClock


class FakeEngine:
    settings = ""

    def __init__(self, name: str, *, fail: bool = False) -> None:
        self.name = name
        self.voice = f"{name}-voice"
        self.fail = fail
        self.calls = 0

    async def synth(self, text: str) -> Speech:
        self.calls += 1
        if self.fail:
            raise TtsError(self.name, TtsFailure.UNAVAILABLE, "down")
        return Speech(text.encode(), SpeechFormat.PCM_S16LE, 22_050, self.name, self.voice)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 7, 1, tzinfo=UTC))


async def test_first_healthy_engine_speaks_all_texts(clock: ManualClock) -> None:
    a, b = FakeEngine("a"), FakeEngine("b")
    engine, speech = await EngineChain([a, b], clock=clock).synth_all(["x", "y"])
    assert engine is a and [s.data for s in speech] == [b"x", b"y"]
    assert (a.calls, b.calls) == (2, 0)


async def test_failed_engine_is_skipped_until_its_backoff_ends(clock: ManualClock) -> None:
    a, b = FakeEngine("a", fail=True), FakeEngine("b")
    chain = EngineChain([a, b], clock=clock, backoff_s=60, max_backoff_s=200)
    engine, _ = await chain.synth_all(["x", "y"])
    assert engine is b and a.calls == 1  # the first failure stops the whole programme on that engine
    await chain.synth_all(["z"])
    assert a.calls == 1 and not chain.available(a)
    clock.advance(60)
    await chain.synth_all(["z"])
    assert a.calls == 2  # tried again, failed again: now 120 s
    clock.advance(119)
    await chain.synth_all(["z"])
    assert a.calls == 2
    clock.advance(1)
    await chain.synth_all(["z"])
    assert a.calls == 3  # next back-off would be 240 s but is capped at 200
    clock.advance(200)
    a.fail = False
    engine, _ = await chain.synth_all(["z"])
    assert engine is a and chain.available(a)
    assert chain.status()[0].consecutive_failures == 0


async def test_when_all_are_backed_off_the_last_is_still_tried(clock: ManualClock) -> None:
    a, b = FakeEngine("a", fail=True), FakeEngine("b", fail=True)
    chain = EngineChain([a, b], clock=clock)
    with pytest.raises(AllEnginesFailed) as info:
        await chain.synth_all(["x"])
    assert [e.engine for e in info.value.errors] == ["a", "b"]
    assert "语音合成失败" in str(info.value)
    b.fail = False
    engine, _ = await chain.synth_all(["x"])
    assert engine is b and a.calls == 1
    status = {s.name: s for s in chain.status()}
    assert not status["a"].available and "down" in status["a"].last_error


def test_empty_chain_is_refused() -> None:
    with pytest.raises(ValueError):
        EngineChain([])
