"""`ebc ebd inspect FILE…`: describe EBD files (EBDB xml, EBDS signature xml or EBDT tar), one JSON line
per file, for operators and support staff checking what an upper platform sent.

Must never verify signatures against keys, modify the files, or print key material.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from broadcast.interconnect.ebd.ids import parse_ebd_id
from broadcast.interconnect.ebd.model import EBD, EBM, EbdError, EBMStateRequest, EBMStateResponse
from broadcast.interconnect.ebd.package import unpack_ebdt
from broadcast.interconnect.ebd.signing import SignatureFile, SignatureFormatError, parse_signature_xml
from broadcast.interconnect.ebd.xml_build import format_time
from broadcast.interconnect.ebd.xml_parse import parse_ebd, parse_xml_root

MAX_FILE_BYTES = 256 * 1024 * 1024


def describe_ebd(ebd: EBD) -> dict[str, Any]:
    h = ebd.header
    out: dict[str, Any] = {
        "kind": "EBDB",
        "ebd_type": ebd.ebd_type.value,
        "ebd_id": h.ebd_id,
        "src": h.src_ebrid,
        "dest": h.dest_ebrid,
        "time": format_time(h.time),
        "version": h.version,
    }
    try:
        out["legacy_ids"] = parse_ebd_id(h.ebd_id).legacy or len(h.src_ebrid) == 18
    except ValueError:
        out["legacy_ids"] = True
    if h.related_ebd_id:
        out["related_ebd_id"] = h.related_ebd_id
    body = ebd.body
    if isinstance(body, EBM | EBMStateRequest | EBMStateResponse):
        out["ebm_id"] = body.ebm_id
    if isinstance(body, EBM):
        out["msg_type"] = int(body.basic.msg_type)
        out["event_type"] = body.basic.event_type
        out["severity"] = body.basic.severity
        out["start_time"] = format_time(body.basic.start_time)
        out["end_time"] = format_time(body.basic.end_time)
        out["area_codes"] = list(body.content.area_codes)
    return out


def describe_signature(sig: SignatureFile) -> dict[str, Any]:
    return {
        "kind": "EBDS",
        "form": sig.form.value,
        "cert_sn": sig.cert_sn,
        "related_ebd_id": sig.related_ebd_id,
        "signature_time": sig.signature_time,
        "signature_algorithm": sig.signature_algorithm,
        "signature_length": len(sig.value),
    }


def inspect_bytes(data: bytes) -> dict[str, Any]:
    """Describe one file's content; raises EbdError / SignatureFormatError when it is none of the kinds."""
    if len(data) > 262 and data[257:262] == b"ustar":
        pkg = unpack_ebdt(data)
        out = describe_ebd(pkg.ebd)
        out["kind"] = "EBDT"
        out["resources"] = {name: len(content) for name, content in sorted(pkg.resources.items())}
        if pkg.signature_xml is None:
            out["signature"] = None
        else:
            try:
                out["signature"] = describe_signature(parse_signature_xml(pkg.signature_xml))
            except SignatureFormatError as exc:
                out["signature"] = {"ok": False, "error": str(exc)}
        return out
    root = parse_xml_root(data)
    if root.tag == "Signature":
        return describe_signature(parse_signature_xml(data))
    return describe_ebd(parse_ebd(data))


def inspect_file(path: str) -> dict[str, Any]:
    try:
        p = Path(path)
        if p.stat().st_size > MAX_FILE_BYTES:
            message = f"文件过大（超过 {MAX_FILE_BYTES} 字节），请确认是否为 EBD 文件"
            return {"file": path, "ok": False, "error": message}
        data = p.read_bytes()
    except OSError as exc:
        return {"file": path, "ok": False, "error": f"无法读取文件，请检查路径和权限：{exc.strerror or exc}"}
    try:
        described = inspect_bytes(data)
    except EbdError as exc:
        return {"file": path, "ok": False, "error": exc.result_desc, "result_code": int(exc.result_code)}
    except SignatureFormatError as exc:
        return {"file": path, "ok": False, "error": f"签名文件无法解析，请向发送方索取正确的签名文件：{exc}"}
    return {"file": path, "ok": True, **described}


def main(argv: list[str], out: TextIO | None = None) -> int:
    """Print one JSON line per file; exit 0 when every file was understood, 1 otherwise, 2 on usage."""
    stream = out or sys.stdout
    if not argv or argv[0] in ("-h", "--help"):
        print("用法: ebc ebd inspect 文件… （EBDB_*.xml、EBDS_*.xml 或 EBDT_*.tar）", file=sys.stderr)
        return 2
    ok = True
    for path in argv:
        result = inspect_file(path)
        ok = ok and bool(result["ok"])
        stream.write(json.dumps(result, ensure_ascii=False) + "\n")
    return 0 if ok else 1
