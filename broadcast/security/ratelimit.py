"""Login rate limiting and lockout (登录限速与锁定), per username and per remote address.

Owns the failure counters, kept in memory (one controller process) and timed by the injected clock's
monotonic time. After ``max_failures`` failures within ``window`` the key is locked for ``lockout``;
while locked even a correct password is refused. Must never sleep, and never reveal whether the
username exists (unknown names are counted like known ones).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

from broadcast.clock import Clock


class LockScope(StrEnum):
    USERNAME = "username"
    ADDRESS = "address"


@dataclass(frozen=True)
class LockoutPolicy:
    max_failures: int = 5
    window_s: float = 15 * 60
    lockout_s: float = 15 * 60


@dataclass(frozen=True)
class Locked:
    scope: LockScope
    key: str
    retry_after_s: int


@dataclass
class _Counter:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


class LoginLimiter:
    def __init__(self, clock: Clock, policy: LockoutPolicy | None = None) -> None:
        self._clock = clock
        self.policy = policy or LockoutPolicy()
        self._counters: dict[tuple[LockScope, str], _Counter] = {}

    @staticmethod
    def _keys(username: str, remote: str) -> list[tuple[LockScope, str]]:
        return [(LockScope.USERNAME, username.strip().casefold()), (LockScope.ADDRESS, remote)]

    MAX_KEYS = 10_000  # above this, forgotten counters are pruned so guessed names cannot fill memory

    def check(self, username: str, remote: str) -> Locked | None:
        """The lock that refuses this attempt, or None when it may proceed."""
        if len(self._counters) > self.MAX_KEYS:
            self.prune()
        now = self._clock.monotonic()
        for key in self._keys(username, remote):
            c = self._counters.get(key)
            if c is not None and c.locked_until > now:
                return Locked(key[0], key[1], max(1, int(c.locked_until - now + 0.999)))
        return None

    def record_failure(self, username: str, remote: str) -> Locked | None:
        """Count a failure; returns the lock it triggered, if any."""
        now = self._clock.monotonic()
        triggered: Locked | None = None
        for key in self._keys(username, remote):
            c = self._counters.setdefault(key, _Counter())
            while c.failures and now - c.failures[0] > self.policy.window_s:
                c.failures.popleft()
            c.failures.append(now)
            if len(c.failures) >= self.policy.max_failures:
                c.locked_until = now + self.policy.lockout_s
                c.failures.clear()
                triggered = triggered or Locked(key[0], key[1], int(self.policy.lockout_s))
        return triggered

    def record_success(self, username: str) -> None:
        # Only the username's counter is cleared: an attacker holding one valid account must not be able
        # to wash out the failures of their address by logging in between guesses.
        self._counters.pop((LockScope.USERNAME, username.strip().casefold()), None)

    def prune(self) -> None:
        """Drop counters with nothing left to remember (call occasionally to bound memory)."""
        now = self._clock.monotonic()
        for key in [
            k
            for k, c in self._counters.items()
            if c.locked_until <= now and all(now - t > self.policy.window_s for t in c.failures)
        ]:
            del self._counters[key]
