"""Business answers to an upper platform: EBMStateResponse on state changes and on request, OMDRequest
Full / Incremental, EBMBrdLog, and county broadcasts reported upward."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from upper_helpers import county_rig

from broadcast.interconnect.ebd.model import (
    EBM,
    BrdStateCode,
    EBDType,
    EBMBrdLog,
    EBMStateResponse,
    EBRDTInfo,
    EBRDTState,
    EBRPSInfo,
    OMDType,
    ResourceStateCode,
    ResultCode,
    RptType,
)
from broadcast.interconnect.snapshot import TerminalStatus
from broadcast.model import BroadcastState, LinkState


def _state_bodies(rig: object) -> list[EBMStateResponse]:
    out = []
    for ebd in rig.province.of_type(EBDType.EBM_STATE_RESPONSE):  # type: ignore[attr-defined]
        assert isinstance(ebd.body, EBMStateResponse)
        out.append(ebd.body)
    return out


async def test_state_changes_are_pushed_once_each(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm, ex = await rig.province.send_ebm()
        assert ex.result_code is ResultCode.OK
        local = next(iter(rig.facade.snaps))
        rig.clock.advance(2)
        rig.facade.air(local, targets=10, played=0, state=BroadcastState.BROADCASTING)
        await rig.ic.reporter.tick()
        assert await rig.ic.outbox.deliver_due() == 1
        rig.clock.advance(60)
        rig.facade.air(local, targets=10, played=10, state=BroadcastState.COMPLETED)
        await rig.ic.reporter.tick()
        await rig.ic.reporter.tick()  # a repeated poll queues nothing new
        assert await rig.ic.outbox.deliver_due() == 1
        bodies = _state_bodies(rig)
        assert [b.brd_state_code for b in bodies] == [BrdStateCode.BROADCASTING, BrdStateCode.SUCCEEDED]
        final = bodies[-1]
        assert final.ebm_id == ebm.ebm_id  # the upper platform's id, not the county's
        assert final.coverage is not None
        assert final.coverage.coverage_rate == "1.00"
        assert final.coverage.res_brd_stat == "1,1,1,10"
        assert final.coverage.area_codes == ("530181000000",)
        assert final.res_brd_info and final.res_brd_info[0].ebrbs[0].brd_state_code == BrdStateCode.SUCCEEDED
        pushed = rig.province.of_type(EBDType.EBM_STATE_RESPONSE)
        assert all(p.header.related_ebd_id == ex.request.ebd_id for p in pushed)
        assert rig.province.violations == []


async def test_partial_broadcast_reports_failed(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        await rig.province.send_ebm()
        local = next(iter(rig.facade.snaps))
        rig.facade.air(local, targets=4, played=3, state=BroadcastState.COMPLETED)
        await rig.ic.reporter.tick()
        await rig.ic.outbox.deliver_due()
        (body,) = _state_bodies(rig)
        assert body.brd_state_code == BrdStateCode.FAILED
        assert body.coverage is not None and body.coverage.coverage_rate == "0.75"
        assert "3/4" in body.brd_state_desc


async def test_state_request_is_answered_asynchronously(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        ebm, _ = await rig.province.send_ebm()
        local = next(iter(rig.facade.snaps))
        rig.facade.air(local, targets=5, played=2, state=BroadcastState.BROADCASTING)
        ex = await rig.province.send_state_request(ebm.ebm_id)
        assert ex.result_code is ResultCode.OK
        assert await rig.ic.outbox.deliver_due() == 1
        (answer,) = rig.province.of_type(EBDType.EBM_STATE_RESPONSE)
        assert answer.header.related_ebd_id == ex.request.ebd_id
        assert isinstance(answer.body, EBMStateResponse)
        assert answer.body.brd_state_code == BrdStateCode.BROADCASTING
        assert answer.body.coverage is not None and answer.body.coverage.coverage_rate == "0.40"
        unknown = await rig.province.send_state_request(ebm.ebm_id[:-4] + "9999")
        assert unknown.result_code is ResultCode.OTHER_ERROR
        assert rig.province.violations == []


async def test_omd_full_and_incremental(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        inv = rig.facade.inventory()
        old = rig.clock.now() - timedelta(hours=2)
        rig.facade.states = {t.resource_code: TerminalStatus(LinkState.ONLINE, old) for t in inv.terminals}
        changed = [t.resource_code for t in inv.terminals[:2]]
        rig.facade.states[changed[0]] = TerminalStatus(LinkState.OFFLINE, rig.clock.now())
        rig.facade.states[changed[1]] = TerminalStatus(LinkState.FAULT, rig.clock.now())
        rig.facade.changed_at = old

        full_info = await rig.province.send_omd(OMDType.EBRDT_INFO)
        full_state = await rig.province.send_omd(OMDType.EBRDT_STATE)
        window_start, window_end = (
            rig.clock.now() - timedelta(minutes=10),
            rig.clock.now() + timedelta(minutes=1),
        )
        inc_state = await rig.province.send_omd(
            OMDType.EBRDT_STATE, RptType.INCREMENTAL, window_start, window_end
        )
        inc_info = await rig.province.send_omd(
            OMDType.EBRPS_INFO, RptType.INCREMENTAL, window_start, window_end
        )
        full_ps = await rig.province.send_omd(OMDType.EBRPS_INFO)
        for ex in (full_info, full_state, inc_state, inc_info, full_ps):
            assert ex.result_code is ResultCode.OK
        assert await rig.ic.outbox.deliver_due() == 5

        def answer_to(request_id: str) -> object:
            (found,) = [
                r.ebd.body for r in rig.province.received if r.ebd.header.related_ebd_id == request_id
            ]
            return found

        info = answer_to(full_info.request.ebd_id)
        assert isinstance(info, EBRDTInfo)
        assert {r.ebrid for r in info.records} == {t.resource_code for t in inv.terminals}
        state = answer_to(full_state.request.ebd_id)
        assert isinstance(state, EBRDTState) and len(state.records) == len(inv.terminals)
        inc = answer_to(inc_state.request.ebd_id)
        assert isinstance(inc, EBRDTState)
        assert {r.ebrid: r.state_code for r in inc.records} == {
            changed[0]: ResourceStateCode.OFF,
            changed[1]: ResourceStateCode.FAULT,
        }
        ps_inc = answer_to(inc_info.request.ebd_id)
        assert isinstance(ps_inc, EBRPSInfo) and ps_inc.records == ()  # inventory unchanged in the window
        ps = answer_to(full_ps.request.ebd_id)
        assert isinstance(ps, EBRPSInfo) and ps.records[0].ebrid == rig.facade.platform_code
        assert rig.province.violations == []


async def test_every_omd_type_is_answered_with_its_own_type(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        await rig.province.send_ebm()
        local = next(iter(rig.facade.snaps))
        rig.facade.air(local, targets=3, played=3, state=BroadcastState.COMPLETED)
        for omd in OMDType:
            ex = await rig.province.send_omd(omd)
            assert ex.result_code is ResultCode.OK
        assert await rig.ic.outbox.deliver_due() == len(OMDType)
        (log_ebd,) = rig.province.of_type(EBDType.EBM_BRD_LOG)
        assert isinstance(log_ebd.body, EBMBrdLog)
        assert log_ebd.body.items[0].brd_state_code == BrdStateCode.SUCCEEDED
        assert rig.province.violations == []


async def test_county_broadcast_is_reported_upward(tmp_path: Path) -> None:
    async with county_rig(tmp_path) as rig:
        draft = rig.province.make_ebm()
        # a county-originated broadcast: build a draft through the converter, then mark it local
        from broadcast.interconnect.convert import ebm_to_draft
        from broadcast.model import SourceKind, SourceRef

        local_draft = ebm_to_draft(draft, src_ebrid=rig.facade.platform_code)
        local_draft = type(local_draft)(
            **{**local_draft.__dict__, "source": SourceRef(SourceKind.OPERATOR, "operator", "op-1")}
        )
        ebm_id = rig.facade.add_local(local_draft)
        rig.facade.air(ebm_id, targets=2, played=0, state=BroadcastState.BROADCASTING)
        await rig.ic.reporter.tick()
        await rig.ic.outbox.deliver_due()
        (ebm,) = rig.province.of_type(EBDType.EBM)
        assert isinstance(ebm.body, EBM) and ebm.body.ebm_id == ebm_id
        assert ebm.body.basic.sender_code == rig.facade.platform_code
        (state,) = _state_bodies(rig)
        assert state.ebm_id == ebm_id and state.brd_state_code == BrdStateCode.BROADCASTING
        assert rig.province.violations == []
