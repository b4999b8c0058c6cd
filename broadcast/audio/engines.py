"""TTS engine contract and the fallback chain (语音合成引擎链).

Owns: the ``TtsEngine`` protocol every speech engine satisfies, the ``Speech`` it returns, the failure
kinds (``TtsFailure``) and ``EngineChain``, which tries engines in order and remembers which are down so a
dead network costs one failed attempt per back-off period, not one per message.

Must never: touch the network or the audio library itself (concrete engines do), sleep, read the wall
clock (time comes from an injected ``broadcast.clock.Clock``), or cache audio (``AudioCache`` does).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from broadcast.clock import Clock, SystemClock
from broadcast.retry import RetryPolicy

log = logging.getLogger(__name__)


class SpeechFormat(StrEnum):
    PCM_S16LE = "pcm_s16le"  # raw 16-bit little-endian mono PCM at Speech.sample_rate
    MP3 = "mp3"  # an MP3 stream (e.g. edge-tts: 24 kHz 48 kbit/s mono)


class TtsFailure(StrEnum):
    """Why an engine produced no speech."""

    UNAVAILABLE = "unavailable"  # library missing / network unreachable / refused
    TIMEOUT = "timeout"  # no (complete) answer within the engine's deadline
    BAD_RESPONSE = "bad_response"  # the service answered with something that is not speech
    EMPTY = "empty"  # the engine produced no audio for a non-empty text
    INTERNAL = "internal"  # an unexpected error inside the engine


class TtsError(Exception):
    """An engine (named by ``engine``) failed to speak a text."""

    def __init__(self, engine: str, failure: TtsFailure, detail: str = "") -> None:
        self.engine = engine
        self.failure = failure
        self.detail = detail
        super().__init__(f"TTS engine {engine!r} failed ({failure}): {detail}")


class AllEnginesFailed(Exception):
    """No engine in the chain could speak; ``errors`` holds one entry per engine tried or skipped."""

    def __init__(self, errors: Sequence[TtsError]) -> None:
        self.errors = tuple(errors)
        summary = "; ".join(f"{e.engine}: {e.failure}" for e in self.errors) or "no engines configured"
        super().__init__(f"语音合成失败（{summary}）。请检查网络或离线语音引擎，或上传录音后重试。")


@dataclass(frozen=True)
class Speech:
    """Synthesised speech for one text."""

    data: bytes
    format: SpeechFormat
    sample_rate: int
    engine: str
    voice: str


@runtime_checkable
class TtsEngine(Protocol):
    """A speech engine. ``settings`` names everything besides the voice that changes the sound (rate,
    volume, pitch), so it can be part of the cache key."""

    @property
    def name(self) -> str: ...

    @property
    def voice(self) -> str: ...

    @property
    def settings(self) -> str: ...

    async def synth(self, text: str) -> Speech:
        """Speak ``text``; raise ``TtsError`` on failure."""
        ...


@dataclass
class _Health:
    down_until: float = 0.0
    failures: int = 0
    last_error: TtsError | None = None


@dataclass(frozen=True)
class EngineStatus:
    name: str
    voice: str
    available: bool
    consecutive_failures: int
    last_error: str


class EngineChain:
    """Try engines in order; after a failure skip that engine for a back-off period.

    The back-off (a ``RetryPolicy`` without jitter) doubles with each consecutive failure (``backoff_s`` …
    ``max_backoff_s``) and resets on a success. If every engine is backed off, the last one (normally the
    offline engine) is tried anyway: a broadcast must not fail just because the chain is being careful.
    """

    def __init__(
        self,
        engines: Sequence[TtsEngine],
        *,
        clock: Clock | None = None,
        backoff_s: float = 60.0,
        max_backoff_s: float = 600.0,
    ) -> None:
        if not engines:
            raise ValueError("an engine chain needs at least one engine")
        self.engines: tuple[TtsEngine, ...] = tuple(engines)
        self._clock = clock or SystemClock()
        # Doubling, no jitter: one chain per process, nothing to spread out.
        self._retry = RetryPolicy(initial_s=backoff_s, max_s=max_backoff_s, factor=2.0, jitter=(1.0, 1.0))
        self._health: dict[int, _Health] = {i: _Health() for i in range(len(self.engines))}

    def available(self, engine: TtsEngine) -> bool:
        """True unless the engine failed recently and is still within its back-off period."""
        h = self._health[self._index(engine)]
        return self._clock.monotonic() >= h.down_until

    def status(self) -> list[EngineStatus]:
        return [
            EngineStatus(
                name=e.name,
                voice=e.voice,
                available=self.available(e),
                consecutive_failures=self._health[i].failures,
                last_error=str(self._health[i].last_error or ""),
            )
            for i, e in enumerate(self.engines)
        ]

    def candidates(self) -> list[TtsEngine]:
        """Engines worth trying now, in order of preference (never empty)."""
        live = [e for e in self.engines if self.available(e)]
        return live or [self.engines[-1]]

    async def synth_all(self, texts: Sequence[str]) -> tuple[TtsEngine, list[Speech]]:
        """Speak every text with one engine (so a programme never mixes voices); fall back as a whole.

        Returns the engine that spoke and its speech, one per text. Raises ``AllEnginesFailed``."""
        errors: list[TtsError] = []
        for engine in self.candidates():
            try:
                out = [await engine.synth(t) for t in texts]
            except TtsError as e:
                errors.append(e)
                self._failed(engine, e)
                continue
            self._succeeded(engine)
            return engine, out
        raise AllEnginesFailed(errors)

    def _index(self, engine: TtsEngine) -> int:
        for i, e in enumerate(self.engines):
            if e is engine:
                return i
        raise KeyError(f"engine {engine.name!r} is not in this chain")

    def _failed(self, engine: TtsEngine, error: TtsError) -> None:
        h = self._health[self._index(engine)]
        h.failures += 1
        h.last_error = error
        delay = self._retry.delay(h.failures)
        h.down_until = self._clock.monotonic() + delay
        if h.failures == 1:
            log.warning(
                "TTS engine %s (%s) is down, skipping it for %.0f s: %s",
                engine.name,
                engine.voice,
                delay,
                error,
            )

    def _succeeded(self, engine: TtsEngine) -> None:
        h = self._health[self._index(engine)]
        if h.failures:
            log.info("TTS engine %s (%s) is back after %d failure(s)", engine.name, engine.voice, h.failures)
        h.failures = 0
        h.down_until = 0.0
        h.last_error = None
