"""The one retry policy of the product (重试策略): jittered exponential backoff.

Every component that tries again after a failure — the dispatcher per delivery, the outbox towards
upper platforms, the CAP feed poller, the TTS engine chain — takes its delay from a ``RetryPolicy``;
each keeps its own parameters (in its config section), none its own formula. It lives in the kernel
because those components sit at different layers. Pure: never sleeps; randomness is injected.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """``delay(n)`` after the n-th failed attempt: ``initial_s · factor^(n-1)``, capped at ``max_s``,
    times a factor drawn uniformly from ``jitter`` (``(1.0, 1.0)``: no jitter)."""

    initial_s: float = 0.5
    max_s: float = 30.0
    factor: float = 2.0
    jitter: tuple[float, float] = (0.8, 1.2)

    def __post_init__(self) -> None:
        low, high = self.jitter
        if self.initial_s <= 0 or self.max_s <= 0 or self.factor < 1 or not 0 <= low <= high:
            raise ValueError(f"invalid retry policy {self}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        exponent = min(max(0, attempt - 1), 64)  # beyond this the cap applies anyway; avoids overflow
        base = min(self.max_s, self.initial_s * self.factor**exponent)
        low, high = self.jitter
        if low == high:
            return base * low
        return base * (rng or random).uniform(low, high)
