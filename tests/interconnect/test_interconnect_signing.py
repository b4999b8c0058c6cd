"""SM2/SM3 signature files: sign → verify, tampering, unknown certs, vendor forms, policy, interop."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from ebd_samples import BODIES, EBD_ID, make_ebd
from tongsuopy.crypto import hashes

from broadcast.clock import ManualClock
from broadcast.interconnect.ebd.model import EBDType, ResultCode
from broadcast.interconnect.ebd.signing import (
    SignatureFile,
    SignatureForm,
    Signer,
    Verifier,
    VerifyResult,
    build_signature_xml,
    generate_private_key,
    load_private_key,
    load_public_key,
    parse_signature_xml,
    private_key_to_pem,
    public_key_to_hex,
    public_key_to_pem,
    signature_result_code,
)
from broadcast.interconnect.ebd.xml_build import build_ebd

DATA = Path(__file__).parent.parent / "data" / "ebd"
CLOCK = ManualClock(datetime(2026, 11, 5, 1, 30, tzinfo=UTC))
KEY = generate_private_key()
SIGNER = Signer(KEY, "42", issuer_id="7", clock=CLOCK)
VERIFIER = Verifier({"000000000042": KEY.public_key()})
EBDB = build_ebd(make_ebd(BODIES[EBDType.EBM]))


def test_signature_file_form_a() -> None:
    xml = SIGNER.sign_xml(EBDB, EBD_ID)
    sig = parse_signature_xml(xml)
    assert sig.form is SignatureForm.STANDARD
    assert (sig.cert_sn, sig.issuer_id, sig.related_ebd_id) == ("000000000042", "000000000007", EBD_ID)
    assert sig.digest_algorithm == "SM3" and sig.signature_algorithm == "SM2"
    assert sig.signature_time == int(CLOCK.now().timestamp())
    assert b"<SignatureTime>" + f"{sig.signature_time:08X}".encode() + b"</SignatureTime>" in xml
    assert len(sig.value) == 74
    assert sig.value[:4] == sig.signature_time.to_bytes(4, "big")
    assert sig.value[4:10] == bytes.fromhex("000000000042") and sig.embedded_cert_sn == "000000000042"
    assert parse_signature_xml(build_signature_xml(sig)) == sig


def test_sign_then_verify_ok_and_tampering_detected() -> None:
    xml = SIGNER.sign_xml(EBDB, EBD_ID)
    assert VERIFIER.verify(EBDB, xml, ebd_id=EBD_ID) is VerifyResult.OK
    flipped = bytearray(EBDB)
    flipped[len(flipped) // 2] ^= 0x01
    assert VERIFIER.verify(bytes(flipped), xml) is VerifyResult.BAD_SIGNATURE
    sig = parse_signature_xml(xml)
    bad_value = bytearray(sig.value)
    bad_value[-1] ^= 0x80
    tampered = SignatureFile(**{**sig.__dict__, "value": bytes(bad_value)})
    assert VERIFIER.verify(EBDB, tampered) is VerifyResult.BAD_SIGNATURE


def test_unknown_cert_missing_and_malformed() -> None:
    other = Signer(generate_private_key(), "43", clock=CLOCK)
    assert VERIFIER.verify(EBDB, other.sign_xml(EBDB, EBD_ID)) is VerifyResult.UNKNOWN_CERT
    assert VERIFIER.verify(EBDB, None) is VerifyResult.MISSING
    assert VERIFIER.verify(EBDB, b"  ") is VerifyResult.MISSING
    assert VERIFIER.verify(EBDB, b"<Signature><CertSN>42</CertSN></Signature>") is VerifyResult.MALFORMED
    assert VERIFIER.verify(EBDB, b"<not-xml") is VerifyResult.MALFORMED
    short = b"<Signature><CertSN>42</CertSN><SignatureValue>AAAA</SignatureValue></Signature>"
    assert VERIFIER.verify(EBDB, short) is VerifyResult.MALFORMED
    other_packet = SIGNER.sign_xml(EBDB, "10" + "9" * 39)
    assert VERIFIER.verify(EBDB, other_packet, ebd_id=EBD_ID) is VerifyResult.MALFORMED


def test_wrong_key_for_known_cert_is_bad_signature() -> None:
    impostor = Signer(generate_private_key(), "42", clock=CLOCK)
    assert VERIFIER.verify(EBDB, impostor.sign_xml(EBDB, EBD_ID)) is VerifyResult.BAD_SIGNATURE


def test_gospell_flattened_signature_with_raw_rs() -> None:
    ebdb = (DATA / "gospell_state_request.xml").read_bytes()
    rs = SIGNER.sign_raw(ebdb)
    template = (DATA / "gospell_signature_flat.xml").read_text(encoding="utf-8")
    xml = template.replace("SIGNATURE_PLACEHOLDER", base64.b64encode(rs).decode()).encode()
    sig = parse_signature_xml(xml)
    assert sig.form is SignatureForm.FLAT and sig.cert_sn == "000000000042"
    assert sig.related_ebd_id == "10234000000000001030101012018112300000004"
    assert sig.signature_algorithm == "SM2-SM3" and sig.digest_algorithm == "SM3"
    assert VERIFIER.verify(ebdb, xml, ebd_id=sig.related_ebd_id) is VerifyResult.OK
    assert VERIFIER.verify(ebdb + b" ", xml) is VerifyResult.BAD_SIGNATURE


def test_policy() -> None:
    assert signature_result_code(EBDType.EBM, VerifyResult.OK) is ResultCode.OK
    assert signature_result_code(EBDType.CONNECTION_CHECK, VerifyResult.MISSING) is ResultCode.OK
    assert signature_result_code(EBDType.EBM, VerifyResult.MISSING) is ResultCode.SIGNATURE_FAILED
    assert signature_result_code(EBDType.OMD_REQUEST, VerifyResult.MISSING) is ResultCode.SIGNATURE_FAILED
    for result in (VerifyResult.BAD_SIGNATURE, VerifyResult.UNKNOWN_CERT, VerifyResult.MALFORMED):
        assert signature_result_code(EBDType.CONNECTION_CHECK, result) is ResultCode.SIGNATURE_FAILED
    assert int(signature_result_code(EBDType.EBM, VerifyResult.BAD_SIGNATURE)) == 4


def test_key_loading_round_trips() -> None:
    pem = private_key_to_pem(KEY)
    again = load_private_key(pem)
    scalar = f"{again.private_numbers().private_value:064x}"  # type: ignore[attr-defined]
    from_hex = load_private_key(scalar)
    pub_hex = public_key_to_hex(KEY.public_key())
    assert len(pub_hex) == 128 and public_key_to_hex(from_hex.public_key()) == pub_hex
    for text in (pub_hex, "04" + pub_hex, public_key_to_pem(KEY.public_key())):
        verifier = Verifier({"42": load_public_key(text)})
        signed = Signer(again, "42", clock=CLOCK).sign_xml(EBDB, EBD_ID)
        assert verifier.verify(EBDB, signed) is VerifyResult.OK
    with pytest.raises(ValueError):
        load_public_key("abcd")
    with pytest.raises(ValueError):
        Signer(KEY, "not-a-serial")


# ---- interop: an independent textbook SM2 verification (GM/T 0003) with the default user id ----

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = P - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
G = (0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
     0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0)


def _add(p: tuple[int, int] | None, q: tuple[int, int] | None) -> tuple[int, int] | None:
    if p is None:
        return q
    if q is None:
        return p
    if p[0] == q[0] and (p[1] + q[1]) % P == 0:
        return None
    if p == q:
        lam = (3 * p[0] * p[0] + A) * pow(2 * p[1], -1, P) % P
    else:
        lam = (q[1] - p[1]) * pow(q[0] - p[0], -1, P) % P
    x = (lam * lam - p[0] - q[0]) % P
    return x, (lam * (p[0] - x) - p[1]) % P


def _mul(k: int, point: tuple[int, int]) -> tuple[int, int] | None:
    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = point
    while k:
        if k & 1:
            result = _add(result, addend)
        addend = _add(addend, addend)
        k >>= 1
    return result


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return bytes(h.finalize())


def test_signature_matches_textbook_sm2_with_default_user_id() -> None:
    sig = parse_signature_xml(SIGNER.sign_xml(EBDB, EBD_ID))
    r, s = int.from_bytes(sig.rs[:32], "big"), int.from_bytes(sig.rs[32:], "big")
    pub = bytes.fromhex(public_key_to_hex(KEY.public_key()))
    px, py = int.from_bytes(pub[:32], "big"), int.from_bytes(pub[32:], "big")
    uid = b"1234567812345678"

    def b32(v: int) -> bytes:
        return v.to_bytes(32, "big")

    entl = (len(uid) * 8).to_bytes(2, "big")
    z = _sm3(entl + uid + b32(A) + b32(B) + b32(G[0]) + b32(G[1]) + b32(px) + b32(py))
    e = int.from_bytes(_sm3(z + EBDB), "big")
    point = _add(_mul(s, G), _mul((r + s) % N, (px, py)))
    assert point is not None and (e + point[0]) % N == r
