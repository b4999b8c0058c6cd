"""The intake applies the CAP signature policy: a signed CAP must verify against a configured
certificate; a tampered one is refused with a clear message and nothing is decided."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from broadcast.clock import ManualClock
from broadcast.intake.intake import Intake, RefusalKind, Refused
from broadcast.sources.cap.signature import SignaturePolicy
from broadcast.web.errors import REFUSAL_STATUS
from terminals.inventory import default_inventory
from tests.sources.test_cap_signature import UNSIGNED, make_signer, sign

NOW = datetime(2025, 7, 12, 5, 0, tzinfo=UTC)


class Desk:
    def __init__(self) -> None:
        self.taken: list[Any] = []

    async def take(self, draft: Any, **kw: Any) -> Any:
        self.taken.append(draft)
        raise AssertionError("only refusals are expected in these tests")


def intake(policy: SignaturePolicy, certs: list[bytes]) -> tuple[Intake, Desk]:
    desk = Desk()
    return (
        Intake(
            default_inventory(),
            desk,  # type: ignore[arg-type]
            ManualClock(NOW),
            max_bytes=256 * 1024,
            signature_policy=policy,
            trusted_certs=certs,
        ),
        desk,
    )


@pytest.fixture(scope="module")
def signer() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    return make_signer("安宁市气象台")


async def test_tampered_signed_cap_refused(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    key, cert = signer
    signed = sign(UNSIGNED, key, cert)
    tampered = signed.replace("暴雨".encode(), "大风".encode(), 1)
    assert tampered != signed
    it, desk = intake(SignaturePolicy.VERIFY_IF_PRESENT, [cert])
    with pytest.raises(Refused) as err:
        await it.submit_cap(tampered)
    assert err.value.kind is RefusalKind.SIGNATURE and REFUSAL_STATUS[err.value.kind] == 422
    assert "签名" in err.value.message
    assert desk.taken == []


async def test_unsigned_refused_when_required(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    it, desk = intake(SignaturePolicy.REQUIRE, [signer[1]])
    with pytest.raises(Refused) as err:
        await it.submit_cap(UNSIGNED)
    assert err.value.kind is RefusalKind.SIGNATURE
    assert desk.taken == []


async def test_untrusted_signer_refused(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    other_key, other_cert = make_signer("冒充者")
    it, desk = intake(SignaturePolicy.VERIFY_IF_PRESENT, [signer[1]])
    with pytest.raises(Refused):
        await it.submit_cap(sign(UNSIGNED, other_key, other_cert))
    assert desk.taken == []


async def test_valid_signature_reaches_the_desk(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    from broadcast.policy.desk import Taken
    from broadcast.policy.types import Action, Decision, Reason

    key, cert = signer

    class Accepting(Desk):
        async def take(self, draft: Any, **kw: Any) -> Any:
            self.taken.append(draft)
            return Taken(Decision(Action.AUTO, Reason.TRUSTED_SEVERE, "自动播发"), 1, "4" * 35, 586)

    desk = Accepting()
    it = Intake(
        default_inventory(),
        desk,  # type: ignore[arg-type]
        ManualClock(NOW),
        max_bytes=256 * 1024,
        signature_policy=SignaturePolicy.REQUIRE,
        trusted_certs=[cert],
    )
    accepted = await it.submit_cap(sign(UNSIGNED, key, cert))
    assert accepted.decision == "auto" and len(desk.taken) == 1
