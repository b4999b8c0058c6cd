"""Platform-to-platform interface (平台间接口, GY/T 384/385, formerly GD/J 082/083): the EBD model, its XML
codec, id rules, tar packages and SM2/SM3 signatures. Transport (HTTP) lives elsewhere.

This package must never do network I/O or read the system clock directly.
"""

from broadcast.interconnect.ebd import EBD, EbdError, EbdErrorKind, EBDHeader, EBDType, ResultCode
from broadcast.interconnect.package import Package, pack_ebdt, unpack_ebdt
from broadcast.interconnect.signing import Signer, Verifier, VerifyResult, signature_result_code
from broadcast.interconnect.xml_build import build_ebd
from broadcast.interconnect.xml_parse import parse_ebd

__all__ = [
    "EBD",
    "EBDHeader",
    "EBDType",
    "EbdError",
    "EbdErrorKind",
    "Package",
    "ResultCode",
    "Signer",
    "Verifier",
    "VerifyResult",
    "build_ebd",
    "pack_ebdt",
    "parse_ebd",
    "signature_result_code",
    "unpack_ebdt",
]
