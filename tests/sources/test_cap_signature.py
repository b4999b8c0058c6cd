"""XML-DSig policy: require / verify-if-present / ignore, with a self-signed signer made in the test."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import methods
from signxml.signer import XMLSigner

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.parse import parse_cap
from broadcast.sources.cap.signature import SignaturePolicy, SignatureStatus, check_signature
from tests.sources.cap_doc import CORPUS

NOW = datetime(2025, 7, 12, 5, 0, tzinfo=UTC)


def make_signer(name: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def signer() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    return make_signer("安宁市气象台")


def sign(data: bytes, key: ec.EllipticCurvePrivateKey, cert: bytes) -> bytes:
    root = etree.fromstring(data, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    signed = XMLSigner(method=methods.enveloped, signature_algorithm="ecdsa-sha256").sign(
        root, key=key, cert=cert.decode()
    )
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


UNSIGNED = (CORPUS / "cma-rainstorm-red.xml").read_bytes()


def test_signed_document_verifies_under_every_checking_policy(
    signer: tuple[ec.EllipticCurvePrivateKey, bytes],
) -> None:
    key, cert = signer
    data = sign(UNSIGNED, key, cert)
    assert parse_cap(data).signature_present
    for policy in (SignaturePolicy.REQUIRE, SignaturePolicy.VERIFY_IF_PRESENT):
        assert check_signature(data, policy, trusted_certs=[cert], now=NOW) is SignatureStatus.VERIFIED


def test_tampered_document_refused(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    key, cert = signer
    data = sign(UNSIGNED, key, cert).replace("红色".encode(), "蓝色".encode(), 1)
    with pytest.raises(CapError) as e:
        check_signature(data, SignaturePolicy.VERIFY_IF_PRESENT, trusted_certs=[cert], now=NOW)
    assert e.value.kind is CapErrorKind.SIGNATURE_INVALID
    assert e.value.identifier == "53018141600000_20250712043000"


def test_untrusted_signer_refused(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    key, cert = signer
    _, other_cert = make_signer("冒充者")
    data = sign(UNSIGNED, key, cert)
    with pytest.raises(CapError) as e:
        check_signature(data, SignaturePolicy.REQUIRE, trusted_certs=[other_cert], now=NOW)
    assert e.value.kind is CapErrorKind.SIGNATURE_INVALID
    assert check_signature(data, SignaturePolicy.REQUIRE, trusted_certs=[other_cert, cert], now=NOW) is (
        SignatureStatus.VERIFIED
    )


def test_signed_but_no_trusted_certs_configured(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    data = sign(UNSIGNED, *signer)
    with pytest.raises(CapError) as e:
        check_signature(data, SignaturePolicy.VERIFY_IF_PRESENT, trusted_certs=[], now=NOW)
    assert e.value.kind is CapErrorKind.SIGNATURE_INVALID
    assert "证书" in e.value.message


def test_unsigned_per_policy(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    _, cert = signer
    with pytest.raises(CapError) as e:
        check_signature(UNSIGNED, SignaturePolicy.REQUIRE, trusted_certs=[cert], now=NOW)
    assert e.value.kind is CapErrorKind.SIGNATURE_MISSING
    assert check_signature(UNSIGNED, SignaturePolicy.VERIFY_IF_PRESENT, trusted_certs=[cert], now=NOW) is (
        SignatureStatus.UNSIGNED
    )


def test_ignore_checks_nothing(signer: tuple[ec.EllipticCurvePrivateKey, bytes]) -> None:
    key, cert = signer
    tampered = sign(UNSIGNED, key, cert).replace("红色".encode(), "蓝色".encode(), 1)
    assert check_signature(tampered, SignaturePolicy.IGNORE, trusted_certs=[], now=NOW) is (
        SignatureStatus.NOT_CHECKED
    )


def test_hostile_input_is_refused_by_the_safe_parser_first() -> None:
    with pytest.raises(CapError) as e:
        hostile = (CORPUS / "xxe-file.xml").read_bytes()
        check_signature(hostile, SignaturePolicy.REQUIRE, trusted_certs=[], now=NOW)
    assert e.value.kind is CapErrorKind.FORBIDDEN_DTD
