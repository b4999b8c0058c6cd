"""EBDT tar packages: packing, tolerant member matching, and refusal of unsafe archives."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Sequence
from pathlib import Path

import pytest
from ebd_samples import BODIES, EBD_ID, make_ebd

from broadcast.interconnect.ebd.model import EbdError, EbdErrorKind, EBDType, ResultCode
from broadcast.interconnect.ebd.package import pack_ebdt, read_members, tar_name, unpack_ebdt
from broadcast.interconnect.ebd.xml_build import build_ebd

DATA = Path(__file__).parent.parent / "data" / "ebd"


def _tar(members: Sequence[tuple[str, bytes | None]], *, link: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
                continue
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link is not None:
            info = tarfile.TarInfo(link)
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tar.addfile(info)
    return buf.getvalue()


def test_pack_unpack_round_trip() -> None:
    packet = make_ebd(BODIES[EBDType.EBM])
    ebdb = build_ebd(packet)
    data = pack_ebdt(EBD_ID, ebdb, b"<Signature/>", {"warning.mp3": b"ID3audio"})
    assert tar_name(EBD_ID) == f"EBDT_{EBD_ID}.tar"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:  # plain, uncompressed
        assert tar.getnames() == [f"EBDB_{EBD_ID}.xml", f"EBDS_EBDB_{EBD_ID}.xml", "EBDR_warning.mp3"]
    pkg = unpack_ebdt(data)
    assert pkg.ebdb == ebdb and pkg.ebd == packet and pkg.ebd_id == EBD_ID
    assert pkg.signature_xml == b"<Signature/>"
    assert dict(pkg.resources) == {"EBDR_warning.mp3": b"ID3audio"}


def test_lishui_style_folder_entry_and_member_order() -> None:
    ebdb = (DATA / "lishui_2016_ebm.xml").read_bytes()
    ebd_id = "100102331100000000012017030100000012"
    folder = f"EBDT_{ebd_id}"
    data = _tar([
        (folder, None),
        (f"{folder}/EBDR_20170301101500.mp3", b"mp3"),
        (f"{folder}/EBDS_EBDB_{ebd_id}.xml", b"<Signature/>"),
        (f"{folder}/EBDB_{ebd_id}.xml", ebdb),
        (f"{folder}/readme.txt", b"ignored"),
    ])
    pkg = unpack_ebdt(data)
    assert pkg.ebdb == ebdb and pkg.ebd.ebd_id == ebd_id
    assert pkg.signature_xml == b"<Signature/>"
    assert set(pkg.resources) == {"EBDR_20170301101500.mp3"}


def test_unsigned_package_has_no_signature() -> None:
    ebdb = build_ebd(make_ebd(BODIES[EBDType.CONNECTION_CHECK]))
    assert unpack_ebdt(pack_ebdt(EBD_ID, ebdb)).signature_xml is None


def _kind(data: bytes, **limits: int) -> EbdErrorKind:
    with pytest.raises(EbdError) as info:
        unpack_ebdt(data, **limits)
    return info.value.kind


def test_unsafe_archives_are_refused() -> None:
    ebdb = build_ebd(make_ebd(BODIES[EBDType.CONNECTION_CHECK]))
    assert _kind(_tar([("../EBDB_x.xml", ebdb)])) is EbdErrorKind.UNSAFE_PACKAGE
    assert _kind(_tar([("/tmp/EBDB_x.xml", ebdb)])) is EbdErrorKind.UNSAFE_PACKAGE
    assert _kind(_tar([("EBDB_x.xml", ebdb)], link="EBDR_link")) is EbdErrorKind.UNSAFE_PACKAGE
    many = [(f"EBDR_{i}.bin", b"x") for i in range(10)] + [("EBDB_x.xml", ebdb)]
    assert _kind(_tar(many), max_members=5) is EbdErrorKind.UNSAFE_PACKAGE
    assert _kind(_tar([("EBDR_big.bin", b"x" * 5000), ("EBDB_x.xml", ebdb)]),
                 max_member_bytes=4096) is EbdErrorKind.TOO_LARGE
    two = _tar([("EBDB_a.xml", ebdb), ("EBDB_b.xml", ebdb)])
    assert _kind(two) is EbdErrorKind.UNSAFE_PACKAGE


def test_missing_body_and_garbage() -> None:
    with pytest.raises(EbdError) as info:
        unpack_ebdt(_tar([("EBDS_EBDB_x.xml", b"<Signature/>")]))
    assert info.value.kind is EbdErrorKind.MISSING and info.value.result_code is ResultCode.CONTENT_MISSING
    with pytest.raises(EbdError) as info:
        unpack_ebdt(b"this is not a tar file at all" * 30)
    assert info.value.kind is EbdErrorKind.MALFORMED and info.value.result_code is ResultCode.PARSE_FAILED


def test_body_that_is_not_xml_is_a_parse_failure() -> None:
    with pytest.raises(EbdError) as info:
        unpack_ebdt(_tar([("EBDB_x.xml", b"\x00\x01 not xml")]))
    assert info.value.result_code is ResultCode.PARSE_FAILED


def test_read_members_keeps_archive_order() -> None:
    names = [name for name, _ in read_members(_tar([("b", b"1"), ("a", b"2")]))]
    assert names == ["b", "a"]


def test_resource_names_must_be_plain() -> None:
    with pytest.raises(ValueError):
        pack_ebdt(EBD_ID, b"<EBD/>", None, {"../evil.mp3": b""})
