"""SM2/SM3 signatures of EBD packages (数字签名, GY/T 389 / GD/J 081) and the signature policy.

Owns: the signature file (EBDS_EBDB_<EBDID>.xml) in form A (Lishui/Comtom, the one we emit) and the
flattened Gospell form (parsed only); `Signer`, `Verifier`, the accept/reject policy, key helpers.

Signed bytes are the raw EBDB file bytes exactly as sent. The SM2 signature is computed by tongsuopy
(Tongsuo/OpenSSL 3) over SM3(Z ‖ M) where Z uses the GM/T 0009 default user id "1234567812345678" —
that is the library default and the convention of gmssl, Tass devices and the vendors; on the wire
it is raw r ‖ s (32 + 32 bytes, big-endian), not DER. SignatureValue = base64 of 74 bytes:
4-byte big-endian time/counter ‖ 6-byte BCD cert SN ‖ 64-byte r ‖ s.

Must never do network I/O, read key files itself (callers pass PEM/hex text), or log key material.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, cast
from xml.sax.saxutils import escape

from tongsuopy.crypto import hashes, serialization
from tongsuopy.crypto.asymciphers import ec
from tongsuopy.crypto.exceptions import InvalidSignature

from broadcast.clock import Clock, SystemClock
from broadcast.interconnect.ebd.model import EbdError, EBDType, ResultCode
from broadcast.interconnect.ebd.xml_parse import parse_xml_root

SM2_DEFAULT_USER_ID = b"1234567812345678"  # GM/T 0009 default, used implicitly by the library
_ALGORITHM = ec.ECDSA(hashes.SM3())  # on an SM2 key tongsuopy computes SM2 with SM3 and the Z value
_COORD = 32


class PublicKey(Protocol):
    def verify(self, signature: bytes, data: bytes, signature_algorithm: Any) -> None: ...

    def public_bytes(self, encoding: Any, format: Any) -> bytes: ...


class PrivateKey(Protocol):
    def sign(self, data: bytes, signature_algorithm: Any) -> bytes: ...

    def public_key(self) -> PublicKey: ...

    def private_bytes(self, encoding: Any, format: Any, encryption_algorithm: Any) -> bytes: ...


class SignatureForm(StrEnum):
    STANDARD = "standard"  # Signature{Version, RelatedEBD, SignatureCert{…}, SignatureTime, …}
    FLAT = "flat"  # Gospell: {Version, RelatedEBD, CertSN, SignatureAlgorithm="SM2-SM3", SignatureValue}


class VerifyResult(StrEnum):
    OK = "ok"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_CERT = "unknown_cert"
    MALFORMED = "malformed"
    MISSING = "missing"


# ---- raw value helpers -----------------------------------------------------------------------


def normalise_cert_sn(sn: str) -> str:
    """Certificate serials are 12-digit zero-padded decimals; other forms are kept upper-cased."""
    sn = sn.strip()
    return sn.zfill(12) if sn.isdigit() and len(sn) <= 12 else sn.upper()


def _bcd(digits: str) -> bytes:
    return bytes.fromhex(digits)


def _der_to_rs(der: bytes) -> bytes:
    """DER SEQUENCE{INTEGER r, INTEGER s} → raw r ‖ s."""
    if len(der) < 8 or der[0] != 0x30:
        raise ValueError("not a DER ECDSA signature")
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    parts: list[int] = []
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not a DER ECDSA signature")
        length = der[pos + 1]
        parts.append(int.from_bytes(der[pos + 2 : pos + 2 + length], "big"))
        pos += 2 + length
    return b"".join(p.to_bytes(_COORD, "big") for p in parts)


def _der_int(value: int) -> bytes:
    raw = value.to_bytes(_COORD + 1, "big").lstrip(b"\x00") or b"\x00"
    if raw[0] & 0x80:
        raw = b"\x00" + raw
    return b"\x02" + bytes([len(raw)]) + raw


def _rs_to_der(rs: bytes) -> bytes:
    body = _der_int(int.from_bytes(rs[:_COORD], "big")) + _der_int(int.from_bytes(rs[_COORD:], "big"))
    return b"\x30" + bytes([len(body)]) + body


# ---- the signature file ----------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureFile:
    cert_sn: str
    value: bytes  # decoded SignatureValue: 74-byte device layout (or 64-byte r‖s / DER from other vendors)
    related_ebd_id: str | None = None
    signature_time: int | None = None  # Unix seconds (SignatureTime is 8 hex digits)
    cert_type: str | None = None
    issuer_id: str | None = None
    digest_algorithm: str = "SM3"
    signature_algorithm: str = "SM2"
    version: str = "1"
    form: SignatureForm = SignatureForm.STANDARD

    @property
    def rs(self) -> bytes:
        """The 64-byte r ‖ s inside the value; ValueError when the value has no recognisable layout."""
        if len(self.value) == 74:
            return self.value[10:]
        if len(self.value) == 64:
            return self.value
        return _der_to_rs(self.value)

    @property
    def embedded_cert_sn(self) -> str | None:
        return self.value[4:10].hex() if len(self.value) == 74 else None


def build_signature_xml(sig: SignatureFile) -> bytes:
    """Form A, element order as in the field samples."""
    time_hex = "" if sig.signature_time is None else f"{sig.signature_time:08X}"
    related = (
        ""
        if sig.related_ebd_id is None
        else (f"  <RelatedEBD>\n    <EBDID>{escape(sig.related_ebd_id)}</EBDID>\n  </RelatedEBD>\n")
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Signature>\n'
        f"  <Version>{escape(sig.version)}</Version>\n{related}"
        "  <SignatureCert>\n"
        f"    <CertType>{escape(sig.cert_type or '')}</CertType>\n"
        f"    <IssuerID>{escape(sig.issuer_id or '')}</IssuerID>\n"
        f"    <CertSN>{escape(sig.cert_sn)}</CertSN>\n"
        "  </SignatureCert>\n"
        f"  <SignatureTime>{time_hex}</SignatureTime>\n"
        f"  <DigestAlgorithm>{escape(sig.digest_algorithm)}</DigestAlgorithm>\n"
        f"  <SignatureAlgorithm>{escape(sig.signature_algorithm)}</SignatureAlgorithm>\n"
        f"  <SignatureValue>{base64.b64encode(sig.value).decode('ascii')}</SignatureValue>\n"
        "</Signature>\n"
    )
    return text.encode("utf-8")


class SignatureFormatError(ValueError):
    """The signature file cannot be read; verification reports MALFORMED."""


def _text(el: Any, tag: str) -> str | None:
    found = el.find(tag) if el is not None else None
    if found is None or found.text is None:
        return None
    return cast(str, found.text).strip() or None


def parse_signature_xml(data: bytes) -> SignatureFile:
    """Parse form A or the flattened Gospell form. Raises SignatureFormatError."""
    try:
        root = parse_xml_root(data, max_bytes=64 * 1024)
    except EbdError as exc:
        raise SignatureFormatError(f"signature file is not readable XML: {exc.message}") from None
    if root.tag != "Signature":
        raise SignatureFormatError(f"signature root is <{root.tag}>, expected <Signature>")
    cert = root.find("SignatureCert")
    form = SignatureForm.STANDARD if cert is not None else SignatureForm.FLAT
    cert_sn = _text(cert, "CertSN") or _text(root, "CertSN")
    value_text = _text(root, "SignatureValue")
    if value_text is None:
        raise SignatureFormatError("SignatureValue is missing")
    try:
        value = base64.b64decode("".join(value_text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise SignatureFormatError("SignatureValue is not base64") from None
    if cert_sn is None:
        if len(value) != 74:
            raise SignatureFormatError("CertSN is missing and the value does not embed one")
        cert_sn = value[4:10].hex()
    time_text = _text(root, "SignatureTime")
    signature_time: int | None = None
    if time_text is not None:
        try:
            signature_time = int(time_text, 16)
        except ValueError:
            raise SignatureFormatError(f"SignatureTime {time_text!r} is not 8 hex digits") from None
    related = root.find("RelatedEBD")
    related_id = _text(related, "EBDID") if related is not None else None
    if related is not None and related_id is None:
        related_id = (related.text or "").strip() or None  # flattened: <RelatedEBD>id</RelatedEBD>
    algorithm = _text(root, "SignatureAlgorithm") or "SM2"
    return SignatureFile(
        cert_sn=normalise_cert_sn(cert_sn),
        value=value,
        related_ebd_id=related_id,
        signature_time=signature_time,
        cert_type=_text(cert, "CertType"),
        issuer_id=_text(cert, "IssuerID"),
        digest_algorithm=_text(root, "DigestAlgorithm") or ("SM3" if "SM3" in algorithm.upper() else ""),
        signature_algorithm=algorithm,
        version=_text(root, "Version") or "1",
        form=form,
    )


# ---- signer / verifier ------------------------------------------------------------------------


class Signer:
    """Signs EBDB bytes with a software SM2 key (tests, simulators, deployments without a crypto device)."""

    def __init__(
        self,
        private_key: PrivateKey,
        cert_sn: str,
        *,
        issuer_id: str = "000000000000",
        cert_type: str = "1",
        clock: Clock | None = None,
    ) -> None:
        sn = normalise_cert_sn(cert_sn)
        if not (sn.isdigit() and len(sn) == 12):
            raise ValueError(f"certificate serial must be up to 12 decimal digits, got {cert_sn!r}")
        self._key = private_key
        self.cert_sn = sn
        self.issuer_id = normalise_cert_sn(issuer_id)
        self.cert_type = cert_type
        self._clock = clock or SystemClock()

    def sign_raw(self, data: bytes) -> bytes:
        """64-byte r ‖ s over `data` (SM3 with the default-id Z value)."""
        return _der_to_rs(self._key.sign(data, _ALGORITHM))

    def sign(self, ebdb: bytes, ebd_id: str) -> SignatureFile:
        now = int(self._clock.now().timestamp()) & 0xFFFFFFFF
        value = now.to_bytes(4, "big") + _bcd(self.cert_sn) + self.sign_raw(ebdb)
        return SignatureFile(
            cert_sn=self.cert_sn,
            value=value,
            related_ebd_id=ebd_id,
            signature_time=now,
            cert_type=self.cert_type,
            issuer_id=self.issuer_id,
        )

    def sign_xml(self, ebdb: bytes, ebd_id: str) -> bytes:
        return build_signature_xml(self.sign(ebdb, ebd_id))


class Verifier:
    """Checks EBDB bytes against a signature file using trusted public keys by certificate serial."""

    def __init__(self, trusted: Mapping[str, PublicKey]) -> None:
        self._trusted = {normalise_cert_sn(sn): key for sn, key in trusted.items()}

    def verify(
        self, ebdb: bytes, signature: bytes | SignatureFile | None, *, ebd_id: str | None = None
    ) -> VerifyResult:
        if signature is None or (isinstance(signature, bytes) and not signature.strip()):
            return VerifyResult.MISSING
        if isinstance(signature, bytes):
            try:
                signature = parse_signature_xml(signature)
            except SignatureFormatError:
                return VerifyResult.MALFORMED
        if ebd_id is not None and signature.related_ebd_id not in (None, ebd_id):
            return VerifyResult.MALFORMED
        try:
            rs = signature.rs
        except (ValueError, IndexError):
            return VerifyResult.MALFORMED
        key = self._trusted.get(signature.cert_sn)
        if key is None and signature.embedded_cert_sn is not None:
            key = self._trusted.get(signature.embedded_cert_sn)
        if key is None:
            return VerifyResult.UNKNOWN_CERT
        try:
            key.verify(_rs_to_der(rs), ebdb, _ALGORITHM)
        except InvalidSignature:
            return VerifyResult.BAD_SIGNATURE
        return VerifyResult.OK


TOLERATED_UNSIGNED: frozenset[EBDType] = frozenset({EBDType.CONNECTION_CHECK})


def signature_result_code(
    ebd_type: EBDType, result: VerifyResult, *, tolerate_unsigned: frozenset[EBDType] = TOLERATED_UNSIGNED
) -> ResultCode:
    """The policy: EBM and business packets must carry a valid signature; an unsigned heartbeat is
    tolerated (Gospell does not sign them). A signature that is present but wrong is never tolerated.
    Returns ResultCode.OK to go on, ResultCode.SIGNATURE_FAILED (4) to refuse."""
    if result is VerifyResult.OK:
        return ResultCode.OK
    if result is VerifyResult.MISSING and ebd_type in tolerate_unsigned:
        return ResultCode.OK
    return ResultCode.SIGNATURE_FAILED


# ---- keys -------------------------------------------------------------------------------------


def generate_private_key() -> PrivateKey:
    return cast(PrivateKey, ec.generate_private_key(ec.SM2()))


def load_private_key(text: str | bytes) -> PrivateKey:
    """A PEM (PKCS#8 / SEC1, unencrypted) or a 64-hex-digit private scalar."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    raw = raw.strip()
    if raw.startswith(b"-----BEGIN"):
        return cast(PrivateKey, serialization.load_pem_private_key(raw, password=None))
    scalar = raw.decode("ascii")
    if len(scalar) != 64:
        raise ValueError("SM2 private key must be PEM or 64 hex digits")
    return cast(PrivateKey, ec.derive_private_key(int(scalar, 16), ec.SM2()))


def load_public_key(text: str | bytes) -> PublicKey:
    """A PEM SubjectPublicKeyInfo, or hex x ‖ y (128 digits, optionally with the 04 prefix)."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    raw = raw.strip()
    if raw.startswith(b"-----BEGIN"):
        return cast(PublicKey, serialization.load_pem_public_key(raw))
    point = raw.decode("ascii")
    if len(point) == 128:
        point = "04" + point
    if len(point) != 130 or not point.startswith("04"):
        raise ValueError("SM2 public key must be PEM or 128 hex digits (x ‖ y)")
    return cast(PublicKey, ec.EllipticCurvePublicKey.from_encoded_point(ec.SM2(), bytes.fromhex(point)))


def private_key_to_pem(key: PrivateKey) -> str:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode("ascii")


def public_key_to_pem(key: PublicKey) -> str:
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


def public_key_to_hex(key: PublicKey) -> str:
    """128 hex digits x ‖ y (the uncompressed point without its 04 prefix)."""
    point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return point[1:].hex()
