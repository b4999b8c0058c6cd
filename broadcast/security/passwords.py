"""Password hashing (argon2id) and the password policy.

Owns how passwords are hashed, verified and judged acceptable. Must never store, log or return a
password in clear — the only clear text that leaves is a freshly generated one-time password, handed
to the caller exactly once.
"""

from __future__ import annotations

import asyncio
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 256  # argon2 is slow by design; refuse absurd inputs before hashing them.


class PolicyViolation(StrEnum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    EQUALS_USERNAME = "equals_username"


_POLICY_MESSAGES = {
    PolicyViolation.TOO_SHORT: f"密码至少需要 {MIN_LENGTH} 个字符，请换一个更长的密码",
    PolicyViolation.TOO_LONG: f"密码不能超过 {MAX_LENGTH} 个字符，请换一个较短的密码",
    PolicyViolation.EQUALS_USERNAME: "密码不能与用户名相同，请换一个密码",
}


class PasswordPolicyError(ValueError):
    """The proposed password breaks the policy; ``message`` says what to do (Chinese)."""

    def __init__(self, violation: PolicyViolation, username: str) -> None:
        self.violation = violation
        self.username = username
        self.message = _POLICY_MESSAGES[violation]
        super().__init__(f"password for {username!r} refused: {violation}")


def check_policy(username: str, password: str) -> None:
    """Raise PasswordPolicyError when ``password`` is not acceptable for ``username``."""
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(PolicyViolation.TOO_SHORT, username)
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(PolicyViolation.TOO_LONG, username)
    if password.strip().casefold() == username.strip().casefold():
        raise PasswordPolicyError(PolicyViolation.EQUALS_USERNAME, username)


_ALPHABET = "".join(c for c in string.ascii_letters + string.digits if c not in "0O1lI")


def generate_one_time_password(length: int = 20) -> str:
    """A random password that satisfies the policy for any username (no look-alike characters)."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(max(length, MIN_LENGTH)))


@dataclass(frozen=True)
class HashParams:
    """argon2id cost. The defaults are argon2-cffi's RFC 9106 low-memory profile; tests pass cheaper ones."""

    time_cost: int = 3
    memory_cost_kib: int = 65536
    parallelism: int = 4


# Cheap parameters for tests only: never use in production.
TEST_PARAMS = HashParams(time_cost=1, memory_cost_kib=8, parallelism=1)


class Passwords:
    """Hash and verify off the event loop (argon2 takes ~0.1 s of CPU by design)."""

    def __init__(self, params: HashParams | None = None) -> None:
        p = params or HashParams()
        self._hasher = PasswordHasher(
            time_cost=p.time_cost, memory_cost=p.memory_cost_kib, parallelism=p.parallelism
        )
        # Verified against when the username is unknown, so timing does not reveal which names exist.
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._hasher.hash, password)

    def _verify(self, stored: str | None, password: str) -> bool:
        try:
            return bool(self._hasher.verify(stored or self._dummy, password)) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    async def verify(self, stored: str | None, password: str) -> bool:
        """True when ``password`` matches ``stored``; ``stored=None`` burns the same time and is False."""
        if len(password) > MAX_LENGTH:
            return False
        return await asyncio.to_thread(self._verify, stored, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
