"""XML-DSig verification of CAP documents (签名验证) under a configurable policy.

Owns: deciding, per `SignaturePolicy`, whether a CAP document's enveloped XML-DSig signature (the
``Signature`` element, last child of ``alert``) is required and valid against the configured trusted
signer certificates. Uses signxml (lxml, no entity resolution, no network).

Never call it before `cap.parse_cap` has accepted the same bytes: that is where size, depth, DTD and
entity attacks are refused; this module must never be the first parser to see untrusted input. Never
fetches certificates, never reads the clock (``now`` is passed in), never falls back to "accept" when a
signature is present but cannot be checked.

Algorithms: signxml's defaults (RSA/ECDSA with SHA-224 and stronger). RSA-SHA1 signatures (seen in old
CAP 1.1 examples) are refused as invalid — say so to the sender rather than lowering the bar here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from cryptography import x509
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.parse import parse_cap


class SignaturePolicy(StrEnum):
    REQUIRE = "require"  # unsigned or invalid → refused
    VERIFY_IF_PRESENT = "verify_if_present"  # unsigned accepted; a present signature must verify
    IGNORE = "ignore"  # signatures are not checked at all


class SignatureStatus(StrEnum):
    VERIFIED = "verified"
    UNSIGNED = "unsigned"
    NOT_CHECKED = "not_checked"


def check_signature(
    data: bytes,
    policy: SignaturePolicy,
    *,
    trusted_certs: Sequence[bytes],
    now: datetime,
) -> SignatureStatus:
    """Apply `policy` to one CAP document; raise `CapError` (SIGNATURE_MISSING / SIGNATURE_INVALID).

    ``trusted_certs`` are PEM signer certificates; the signature must verify against one of them and
    cover the whole ``alert``.
    """
    if policy is SignaturePolicy.IGNORE:
        return SignatureStatus.NOT_CHECKED
    alert = parse_cap(data)  # the safe parser first, always
    ident = alert.identifier
    if not alert.signature_present:
        if policy is SignaturePolicy.REQUIRE:
            raise CapError(
                CapErrorKind.SIGNATURE_MISSING,
                "本平台要求 CAP 预警带数字签名，该文档未签名，已拒收；请发布单位开启签名",
                identifier=ident,
            )
        return SignatureStatus.UNSIGNED
    if not trusted_certs:
        raise CapError(
            CapErrorKind.SIGNATURE_INVALID,
            "CAP 文档带签名，但本平台没有配置可信的签名证书，无法验证；请在配置中加入发布单位的证书",
            identifier=ident,
        )
    reasons: list[str] = []
    for pem in trusted_certs:
        cert = x509.load_pem_x509_certificate(pem)
        try:
            result = XMLVerifier().verify(data, x509_cert=cert, expect_config=_config(now))
        except (InvalidSignature, InvalidInput) as e:
            reasons.append(str(e))
            continue
        results = result if isinstance(result, list) else [result]
        signed = results[0].signed_xml
        if signed is None or (not str(signed.tag).endswith("}alert") and signed.tag != "alert"):
            reasons.append("signature does not cover the alert element")
            continue
        return SignatureStatus.VERIFIED
    raise CapError(
        CapErrorKind.SIGNATURE_INVALID,
        f"CAP 文档的数字签名验证失败（{'; '.join(reasons)[:200]}），已拒收；"
        "可能被篡改或证书不符，请联系发布单位核实",
        identifier=ident,
    )


def _config(now: datetime) -> SignatureConfiguration:
    return SignatureConfiguration(verification_time=now)
