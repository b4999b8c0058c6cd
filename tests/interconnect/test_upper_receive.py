"""Receiving from an upper platform: EBMs in, signed EBDResponses out, signature policy, dedupe, legacy."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

from upper_helpers import COUNTY_KEY, county_rig

from broadcast.interconnect.ebd.model import EBD, EBDHeader, EBDResponse, ResultCode
from broadcast.interconnect.ebd.package import pack_ebdt, unpack_ebdt
from broadcast.interconnect.ebd.signing import Signer, Verifier, VerifyResult, generate_private_key
from broadcast.interconnect.ebd.xml_build import build_ebd
from broadcast.model import MsgType, Priority, SourceKind

DATA = Path(__file__).parent.parent / "data" / "ebd"


async def test_signed_ebm_is_submitted_as_upper_draft(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm, ex = await rig.province.send_ebm(MsgType.ACTUAL, area_codes=("530181001000",))
        assert ex.result_code is ResultCode.OK
        assert len(rig.facade.drafts) == 1
        draft = rig.facade.drafts[0]
        assert draft.source.kind is SourceKind.UPPER
        assert draft.source.identifier == ebm.ebm_id
        assert draft.priority is Priority.UPPER_EMERGENCY
        assert draft.area_codes == ("530181001000",)
        assert draft.primary.title == ebm.content.title
        assert rig.province.violations == []


async def test_raw_tar_body_is_accepted(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm = rig.province.make_ebm()
        request, tar = rig.province.prepare(ebm)
        ex = await rig.province.send_raw(tar, request, multipart=False)
        assert ex.result_code is ResultCode.OK
        assert len(rig.facade.drafts) == 1


async def test_duplicate_ebdid_answered_without_second_submit(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm = rig.province.make_ebm()
        request, tar = rig.province.prepare(ebm)
        first = await rig.province.send_raw(tar, request)
        second = await rig.province.send_raw(tar, request)
        assert first.result_code is second.result_code is ResultCode.OK
        assert first.response is not None and second.response is not None
        assert first.response.ebd_id == second.response.ebd_id  # the stored answer, not a new one
        assert len(rig.facade.drafts) == 1
        # the same EBM under a new EBDID (a resend) is not broadcast twice either
        third = await rig.province.send(ebm)
        assert third.result_code is ResultCode.OK
        assert len(rig.facade.drafts) == 1


async def test_tampered_package_is_refused_with_4(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ex = await rig.province.send(rig.province.make_ebm(), tamper=True)
        assert ex.result_code is ResultCode.SIGNATURE_FAILED
        assert rig.facade.drafts == []


async def test_unsigned_ebm_is_refused_with_4(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ex = await rig.province.send(rig.province.make_ebm(), sign=False)
        assert ex.result_code is ResultCode.SIGNATURE_FAILED
        assert rig.facade.drafts == []


async def test_untrusted_certificate_is_refused_with_4(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        rig.province.signer = Signer(generate_private_key(), rig.province.cert_sn, clock=rig.clock)
        ex = await rig.province.send(rig.province.make_ebm())
        assert ex.result_code is ResultCode.SIGNATURE_FAILED
        assert rig.facade.drafts == []


async def test_unsigned_heartbeat_is_accepted(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ex = await rig.province.send_heartbeat(sign=False)
        assert ex.result_code is ResultCode.OK
        signed = await rig.province.send_heartbeat()
        assert signed.result_code is ResultCode.OK
        assert rig.province.violations == []


async def test_garbage_is_a_parse_failure_and_missing_body_is_3(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        receiver = rig.ic.receiver
        garbage = await receiver.receive(b"this is not a tar file at all" * 40)
        assert garbage.result_code is ResultCode.PARSE_FAILED
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("EBDR_note.mp3")
            info.size = 2
            tar.addfile(info, io.BytesIO(b"hi"))
        empty = await receiver.receive(buf.getvalue())
        assert empty.result_code is ResultCode.CONTENT_MISSING
        # the answer itself is a signed EBDResponse
        pkg = unpack_ebdt(garbage.tar)
        assert isinstance(pkg.ebd.body, EBDResponse) and pkg.signature_xml is not None


async def test_ebm_without_area_is_content_missing(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm = rig.province.make_ebm()
        ebm = replace(ebm, content=replace(ebm.content, area_codes=()))
        ex = await rig.province.send(ebm)
        assert ex.result_code is ResultCode.CONTENT_MISSING
        assert rig.facade.drafts == []


async def test_cancel_and_drill(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm, _ = await rig.province.send_ebm(MsgType.ACTUAL)
        local = next(iter(rig.facade.snaps))
        _, ex = await rig.province.send_ebm(MsgType.CANCEL, related_ebm_id=ebm.ebm_id)
        assert ex.result_code is ResultCode.OK
        assert rig.facade.cancelled == [local]
        _, unknown = await rig.province.send_ebm(MsgType.CANCEL, related_ebm_id=ebm.ebm_id[:-4] + "9999")
        assert unknown.result_code is ResultCode.OTHER_ERROR
        _, no_ref = await rig.province.send_ebm(MsgType.CANCEL)
        assert no_ref.result_code is ResultCode.CONTENT_MISSING
        _, drill = await rig.province.send_ebm(MsgType.TERMINAL_DRILL, severity=15)
        assert drill.result_code is ResultCode.OK
        assert rig.facade.drafts[-1].msg_type is MsgType.TERMINAL_DRILL
        assert rig.facade.drafts[-1].priority is Priority.DRILL
        assert len(rig.facade.drafts) == 2  # the actual and the drill; cancels are not submitted


async def test_update_names_its_original_by_the_county_id(tmp_path: Path) -> None:
    """RelatedInfo carries the upper platform's EBMID; the county's policy knows the original by the
    county's id, so an Update of a message we took is handed over with that id (as a Cancel is)."""
    async with county_rig(tmp_path) as rig:
        ebm, _ = await rig.province.send_ebm(MsgType.ACTUAL)
        local = next(iter(rig.facade.snaps))
        _, ex = await rig.province.send_ebm(MsgType.ACTUAL, related_ebm_id=ebm.ebm_id, severity=1)
        assert ex.result_code is ResultCode.OK
        assert rig.facade.drafts[-1].related_ebm_id == local
        never_seen = ebm.ebm_id[:-4] + "9999"  # not ours (yet): left as the upper platform wrote it
        _, early = await rig.province.send_ebm(MsgType.ACTUAL, related_ebm_id=never_seen)
        assert early.result_code is ResultCode.OK
        assert rig.facade.drafts[-1].related_ebm_id == never_seen


async def test_wrong_dest_is_refused(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        rig.province.county_ebrid = "45301810000000101010102"
        ex = await rig.province.send(rig.province.make_ebm())
        assert ex.result_code is ResultCode.OTHER_ERROR
        assert rig.facade.drafts == []


async def test_legacy_18_digit_package_is_parsed(tmp_path: Path) -> None:
    legacy_county = "010333112400000001"
    async with county_rig(tmp_path, accept_dest=frozenset({legacy_county})) as rig:
        ebdb = (DATA / "lishui_2016_ebm.xml").read_bytes()
        ebd_id = "100102331100000000012017030100000012"
        signature = rig.province.signer.sign_xml(ebdb, ebd_id)
        reply = await rig.ic.receiver.receive(pack_ebdt(ebd_id, ebdb, signature))
        assert reply.result_code is ResultCode.OK, reply.result_desc
        draft = rig.facade.drafts[0]
        assert draft.source.identifier == "010233110000000001201703010002"
        assert draft.area_codes == ("331124000000", "331124100000")
        assert any("EBDR_20170301101500.mp3" in w for w in draft.warnings)
        answer = unpack_ebdt(reply.tar).ebd
        assert answer.header.related_ebd_id == ebd_id
        assert answer.header.dest_ebrid == "010233110000000001"


async def test_answer_is_signed_by_the_county(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        request = EBD(
            EBDHeader(
                "1025300000000000103010101" + "2026110500000001",
                "25300000000000103010101",
                rig.facade.platform_code,
                rig.clock.now(),
            ),
            EBDResponse(ResultCode.OK, "x"),
        )
        ebdb = build_ebd(request)
        tar = pack_ebdt(request.ebd_id, ebdb, rig.province.signer.sign_xml(ebdb, request.ebd_id))
        reply = await rig.ic.receiver.receive(tar)
        assert reply.result_code is ResultCode.RECEIVED
        pkg = unpack_ebdt(reply.tar)
        ours = Verifier({"000000000101": COUNTY_KEY.public_key()})
        assert ours.verify(pkg.ebdb, pkg.signature_xml, ebd_id=pkg.ebd_id) is VerifyResult.OK
