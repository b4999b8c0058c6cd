"""The one retry policy: exponential from ``initial_s``, capped at ``max_s``, jittered within the given
range, reproducible with a seeded generator; nonsense parameters are refused."""

from __future__ import annotations

import random

import pytest

from broadcast.retry import RetryPolicy


def test_exponential_and_capped_without_jitter() -> None:
    policy = RetryPolicy(initial_s=0.5, max_s=3.0, jitter=(1.0, 1.0))
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert policy.delay(0) == 0.5  # "before the first failure" counts as the first
    assert policy.delay(10_000) == 3.0  # no overflow on a long outage


def test_jitter_stays_in_range_and_is_reproducible() -> None:
    policy = RetryPolicy(initial_s=5.0, max_s=300.0, jitter=(0.5, 1.0))
    a = [policy.delay(n, random.Random(1)) for n in range(1, 12)]
    b = [policy.delay(n, random.Random(1)) for n in range(1, 12)]
    assert a == b
    for n, d in enumerate(a, start=1):
        base = min(300.0, 5.0 * 2 ** (n - 1))
        assert 0.5 * base <= d <= base


@pytest.mark.parametrize(
    "kwargs",
    [{"initial_s": 0}, {"max_s": -1}, {"factor": 0.5}, {"jitter": (1.2, 0.8)}, {"jitter": (-0.1, 1.0)}],
)
def test_nonsense_is_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="invalid retry policy"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
