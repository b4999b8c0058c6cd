"""EBD tar packages (数据包文件): `EBDT_<EBDID>.tar` ⊃ `EBDB_<EBDID>.xml` (body), `EBDS_EBDB_<EBDID>.xml`
(signature) and optional `EBDR_<name>` resources (eb-protocols §2).

Owns packing (plain, uncompressed tar, flat names) and safe unpacking: members are matched by basename
prefix (a folder entry, any order and an odd gzip wrapper are tolerated); traversal, links, devices,
absurd sizes and too many members are refused. Returns the raw EBDB bytes because the signature covers
exactly those bytes.

Must never verify signatures, write to disk or extract anything to the file system.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from broadcast.interconnect.ebd.model import EBD, EbdError, EbdErrorKind
from broadcast.interconnect.ebd.xml_parse import parse_ebd

MAX_MEMBERS = 64
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 128 * 1024 * 1024
MAX_EBDB_BYTES = 4 * 1024 * 1024


def tar_name(ebd_id: str) -> str:
    return f"EBDT_{ebd_id}.tar"


def body_name(ebd_id: str) -> str:
    return f"EBDB_{ebd_id}.xml"


def signature_name(ebd_id: str) -> str:
    return f"EBDS_EBDB_{ebd_id}.xml"


def resource_name(name: str) -> str:
    return name if name.startswith("EBDR_") else f"EBDR_{name}"


@dataclass(frozen=True)
class Package:
    """An unpacked EBDT: raw body bytes (what the signature covers), the parsed EBD, the raw signature file
    (None when the sender did not sign) and resources by basename."""

    ebdb: bytes
    ebd: EBD
    signature_xml: bytes | None
    resources: Mapping[str, bytes] = field(default_factory=dict)
    body_member: str = ""

    @property
    def ebd_id(self) -> str:
        return self.ebd.ebd_id


def pack_ebdt(
    ebd_id: str,
    ebdb: bytes,
    signature_xml: bytes | None = None,
    resources: Mapping[str, bytes] | None = None,
    *,
    mtime: int = 0,
) -> bytes:
    """Build a plain tar with flat member names; resources are named `EBDR_<name>`."""
    members: list[tuple[str, bytes]] = [(body_name(ebd_id), ebdb)]
    if signature_xml is not None:
        members.append((signature_name(ebd_id), signature_xml))
    for name, data in (resources or {}).items():
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise ValueError(f"resource name must be a plain file name, got {name!r}")
        members.append((resource_name(name), data))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _basename(name: str) -> str:
    return name.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def _unsafe(message: str) -> EbdError:
    return EbdError(EbdErrorKind.UNSAFE_PACKAGE, message)


def _check_path(name: str) -> None:
    norm = name.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or ".." in norm.split("/"):
        raise _unsafe(f"tar member {name!r} escapes the package (absolute path or '..')")


def read_members(
    data: bytes,
    *,
    max_members: int = MAX_MEMBERS,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> list[tuple[str, bytes]]:
    """Safely read the regular-file members of a tar as (member name, bytes), in archive order."""
    if len(data) > max_total_bytes:
        raise EbdError(EbdErrorKind.TOO_LARGE, f"package is {len(data)} bytes, limit {max_total_bytes}")
    out: list[tuple[str, bytes]] = []
    total = 0
    seen = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            while (info := tar.next()) is not None:
                seen += 1
                if seen > max_members:
                    raise _unsafe(f"package has more than {max_members} members")
                _check_path(info.name)
                if info.isdir():
                    continue
                if not info.isfile():
                    raise _unsafe(f"tar member {info.name!r} is a link or special file")
                if info.size > max_member_bytes:
                    raise EbdError(
                        EbdErrorKind.TOO_LARGE,
                        f"tar member {info.name!r} is {info.size} bytes, limit {max_member_bytes}",
                    )
                total += info.size
                if total > max_total_bytes:
                    raise EbdError(EbdErrorKind.TOO_LARGE, f"package content exceeds {max_total_bytes} bytes")
                handle = tar.extractfile(info)
                if handle is None:
                    raise _unsafe(f"tar member {info.name!r} cannot be read")
                out.append((info.name, handle.read()))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise EbdError(EbdErrorKind.MALFORMED, f"not a readable tar package: {exc}") from None
    return out


def unpack_ebdt(data: bytes, **limits: int) -> Package:
    """Unpack an EBDT and parse its body. Raises EbdError (MISSING when there is no EBDB_ member)."""
    body: tuple[str, bytes] | None = None
    signature: bytes | None = None
    resources: dict[str, bytes] = {}
    for name, content in read_members(data, **limits):
        base = _basename(name)
        upper = base.upper()
        if upper.startswith("EBDB_"):
            if body is not None:
                raise _unsafe(f"package holds two bodies: {body[0]!r} and {name!r}")
            body = (name, content)
        elif upper.startswith("EBDS_"):
            if signature is not None:
                raise _unsafe(f"package holds two signature files, second is {name!r}")
            signature = content
        elif upper.startswith("EBDR_"):
            resources[base] = content
        # anything else (readme files, vendor extras) is ignored
    if body is None:
        raise EbdError(EbdErrorKind.MISSING, "package has no EBDB_ body file", where="EBDB")
    if len(body[1]) > MAX_EBDB_BYTES:
        raise EbdError(EbdErrorKind.TOO_LARGE, f"EBDB body is {len(body[1])} bytes, limit {MAX_EBDB_BYTES}")
    ebd = parse_ebd(body[1])
    return Package(body[1], ebd, signature, resources, body[0])
