"""The province ↔ real county controller, end to end: a signed EBM over HTTP reaches the 586 simulated
loudspeakers of Anning (real IP-loudspeaker protocol) and the province gets its state reports back.

Real sockets everywhere (127.0.0.1, ephemeral ports); the interconnect's loops are driven by hand
(`run_loops = false`) so each report is pumped exactly when the test asks for it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from broadcast.app.controller import Controller
from broadcast.app.interconnect import attach_interconnect
from broadcast.intake.intake import RefusalKind
from broadcast.interconnect.convert import ebm_to_draft
from broadcast.interconnect.ebd.keys import read_public_key, write_key_pair
from broadcast.interconnect.ebd.model import (
    EBM,
    BrdStateCode,
    EBDType,
    EBMStateResponse,
    EBRDTInfo,
    EBRDTState,
    OMDType,
    ResourceStateCode,
    ResultCode,
    RptType,
)
from broadcast.interconnect.ebd.signing import public_key_to_pem
from broadcast.interconnect.facade import ControllerFacade, CountyRefusal
from broadcast.interconnect.routes import Interconnect
from broadcast.model import BroadcastState, MsgType, Priority
from broadcast.policy.types import Action, Reason
from broadcast.store import broadcasts as store
from sim.fleet import Fleet
from sim.upper_platform import PROVINCE, PROVINCE_CERT_SN, ProvincePlatform
from tests.e2e.conftest import AUTH, settings_for
from tests.helpers.poll import wait_until

COUNTY_CERT_SN = "000000000101"
WHOLE_COUNTY = "530181000000"


# A short yellow warning: one repeat of a few seconds of speech keeps rendering and playback quick.
def short_ebm(province: ProvincePlatform, area: str = WHOLE_COUNTY) -> EBM:
    return province.make_ebm(
        area_codes=(area,), severity=2, title="大风橙色预警", text="省气象台发布大风橙色预警，请注意防范。"
    )


@dataclass
class UpperCounty:
    controller: Controller
    fleet: Fleet
    province: ProvincePlatform
    ic: Interconnect

    async def pump(self) -> None:
        """One round of the interconnect's background work: report state changes, deliver the outbox."""
        await self.ic.reporter.tick()
        await self.ic.outbox.deliver_due()

    async def only_broadcast(self) -> dict[str, Any]:
        rows = await store.list_broadcasts(self.controller.engine)
        assert len(rows) == 1, rows
        return rows[0]

    def state_bodies(self) -> list[EBMStateResponse]:
        out = []
        for ebd in self.province.of_type(EBDType.EBM_STATE_RESPONSE):
            assert isinstance(ebd.body, EBMStateResponse)
            out.append(ebd.body)
        return out


@pytest.fixture
async def upper(tmp_path: Path) -> AsyncIterator[UpperCounty]:
    keys = write_key_pair(tmp_path / "keys", "county")
    controller = await Controller.create(settings_for(tmp_path))
    province = ProvincePlatform(
        controller.inventory.platform_code,
        read_public_key(str(keys.public_pem), tmp_path),
        COUNTY_CERT_SN,
    )
    await province.start()
    province_pub = tmp_path / "keys" / "province-sm2.pub.pem"
    province_pub.write_text(public_key_to_pem(province.key.public_key()), encoding="ascii")
    section = {
        "private_key": str(keys.private_pem),
        "cert_sn": COUNTY_CERT_SN,
        "trusted": {PROVINCE_CERT_SN: "keys/province-sm2.pub.pem"},  # relative to the base dir
        "peers": [{"ebrid": PROVINCE, "url": province.url, "name": "云南省应急广播平台"}],
        "run_loops": False,
    }
    attached: list[Interconnect | None] = []

    async def extra_setup(ctl: Controller, app: web.Application) -> None:
        attached.append(
            attach_interconnect(ctl.county, app, section, base_dir=ctl.settings.base_dir, session=ctl.http)
        )

    await controller.start(extra_setup=extra_setup)
    ic = attached[0]
    assert ic is not None
    adapter = controller.registry.get("ip_speaker")
    assert adapter is not None
    fleet = Fleet(
        controller.inventory.terminals,
        "127.0.0.1",
        int(adapter.status()["port"]),
        time_scale=0.002,
        heartbeat_interval_s=5.0,
    )
    await fleet.start()
    n = len(controller.inventory.terminals)
    assert n == 586
    await fleet.wait_connected(n, timeout=20.0)
    await wait_until(_online(controller), lambda k: k == n)
    province.county_url = f"http://127.0.0.1:{controller.web_port}/ebd"
    try:
        yield UpperCounty(controller, fleet, province, ic)
    finally:
        await fleet.stop()
        await controller.close()
        await province.close()


def _online(controller: Controller) -> Any:
    async def probe() -> int:
        counts = controller.links.counts()
        return counts["online"] + counts["broadcasting"]

    return probe


async def test_signed_ebm_reaches_every_terminal_and_reports_success(upper: UpperCounty) -> None:
    ebm = short_ebm(upper.province)
    ex = await upper.province.send(ebm)
    assert ex.status == 200 and ex.result_code is ResultCode.OK, ex
    row = await upper.only_broadcast()
    assert row["source_kind"] == "upper"
    assert row["priority"] == Priority.UPPER_EMERGENCY
    county_ebm = row["ebm_id"]
    assert county_ebm.startswith(upper.controller.inventory.platform_code) and county_ebm != ebm.ebm_id

    async def final_code() -> list[int]:
        await upper.pump()
        return [b.brd_state_code for b in upper.state_bodies()]

    codes = await wait_until(final_code, lambda c: BrdStateCode.SUCCEEDED in c, within=30)
    assert codes == sorted(codes) and codes[-1] == BrdStateCode.SUCCEEDED  # never backwards, once each
    assert len(codes) == len(set(codes))
    final = upper.state_bodies()[-1]
    assert final.ebm_id == ebm.ebm_id  # the province's id, not the county's
    assert final.coverage is not None
    assert final.coverage.coverage_rate == "1.00"
    assert final.coverage.res_brd_stat == "1,1,1,586"
    assert final.coverage.area_codes == (WHOLE_COUNTY,)
    [item] = final.res_brd_info
    assert item.ebrbs[0].brd_state_code == BrdStateCode.SUCCEEDED
    assert "586/586" in (item.ebrbs[0].brd_state_desc or "")
    # Ground truth on the simulated side: every loudspeaker played the county's EBM exactly once.
    for t in upper.controller.inventory.terminals:
        plays = [p for p in upper.fleet.terminal(t.resource_code).played if p.ebm_id == county_ebm]
        assert len(plays) == 1, t.resource_code
    # Asked again, the state is answered the same way.
    asked = await upper.province.send_state_request(ebm.ebm_id)
    assert asked.result_code is ResultCode.OK
    await upper.pump()
    answers = [b for b in upper.state_bodies() if b.ebm_id == ebm.ebm_id]
    assert answers[-1].brd_state_code == BrdStateCode.SUCCEEDED and len(answers) == len(codes) + 1
    assert upper.province.violations == []


async def test_tampered_or_unknown_area_ebm_broadcasts_nothing_and_facade_is_idempotent(
    upper: UpperCounty,
) -> None:
    engine = upper.controller.engine
    before = await store.count_broadcasts(engine)
    tampered = await upper.province.send(upper.province.make_ebm(), tamper=True)
    assert tampered.result_code is ResultCode.SIGNATURE_FAILED
    unsigned = await upper.province.send(upper.province.make_ebm(), sign=False)
    assert unsigned.result_code is ResultCode.SIGNATURE_FAILED
    _, elsewhere = await upper.province.send_ebm(area_codes=("530182000000",))  # not our county
    assert elsewhere.result_code is ResultCode.CONTENT_MISSING
    assert elsewhere.response is not None
    assert "未知的区域编码" in getattr(elsewhere.response.body, "result_desc", "")
    await upper.pump()
    assert await store.count_broadcasts(engine) == before == 0
    assert all(not t.played for t in upper.fleet.terminals)
    assert upper.state_bodies() == []
    # The facade itself: idempotent by source key, refusals carry a kind and a ResultCode.
    facade = ControllerFacade(upper.controller.county)
    draft = ebm_to_draft(short_ebm(upper.province, "530181003000"), src_ebrid=PROVINCE)
    first = await facade.submit_upper(draft)
    again = await facade.submit_upper(draft)
    assert first == again
    assert await store.count_broadcasts(upper.controller.engine) == 1
    cancel = ebm_to_draft(
        upper.province.make_ebm(MsgType.CANCEL, related_ebm_id="x" * 35), src_ebrid=PROVINCE
    )
    with pytest.raises(CountyRefusal) as refused:
        await facade.submit_upper(cancel)
    assert refused.value.kind is RefusalKind.NOT_BROADCASTABLE and refused.value.code is ResultCode.OTHER_ERROR
    snap = await facade.broadcast_state(first[1])
    assert snap is not None and snap.ebm_id == first[1]
    assert snap.targets == len(upper.controller.inventory.resolve(["530181003000"]))
    assert await facade.broadcast_state("0" * 35) is None
    assert not await facade.cancel_by_ebm("0" * 35)


async def test_cancel_ebm_stops_a_live_broadcast(upper: UpperCounty) -> None:
    for t in upper.fleet.terminals:
        t.time_scale = 1.0  # play for the real duration so the broadcast is still live when cancelled
    ebm = short_ebm(upper.province)
    ex = await upper.province.send(ebm)
    assert ex.result_code is ResultCode.OK
    row = await upper.only_broadcast()

    async def playing() -> int:
        return sum(1 for t in upper.fleet.terminals if t.playing == row["ebm_id"])

    await wait_until(playing, lambda k: k == 586, within=20)
    _, cancel = await upper.province.send_ebm(MsgType.CANCEL, related_ebm_id=ebm.ebm_id)
    assert cancel.result_code is ResultCode.OK, cancel
    await wait_until(playing, lambda k: k == 0, within=10)
    assert await store.count_broadcasts(upper.controller.engine) == 1  # the cancel is not a broadcast
    gone = await store.get_broadcast(upper.controller.engine, int(row["id"]))
    assert gone is not None and gone["state"] == BroadcastState.CANCELLED

    async def codes() -> list[int]:
        await upper.pump()
        return [b.brd_state_code for b in upper.state_bodies()]

    reported = await wait_until(codes, lambda c: BrdStateCode.CANCELLED in c, within=10)
    assert reported[-1] == BrdStateCode.CANCELLED
    assert all(not p.completed for t in upper.fleet.terminals for p in t.played if p.ebm_id == row["ebm_id"])


async def test_omd_request_lists_every_terminal(upper: UpperCounty) -> None:
    inventory = upper.controller.inventory
    for omd in (OMDType.EBRDT_INFO, OMDType.EBRDT_STATE):
        ex = await upper.province.send_omd(omd, RptType.FULL)
        assert ex.result_code is ResultCode.OK, ex
    await upper.pump()
    [info] = upper.province.of_type(EBDType.EBRDT_INFO)
    assert isinstance(info.body, EBRDTInfo)
    assert len(info.body.records) == 586
    assert {r.ebrid for r in info.body.records} == {t.resource_code for t in inventory.terminals}
    assert all(r.related_ebrps_id == inventory.platform_code for r in info.body.records)
    [state] = upper.province.of_type(EBDType.EBRDT_STATE)
    assert isinstance(state.body, EBRDTState)
    assert len(state.body.records) == 586
    assert {r.state_code for r in state.body.records} == {ResourceStateCode.ON}
    assert upper.province.violations == []
    # The interconnect lives on the controller's own web port next to its REST API.
    url = f"http://127.0.0.1:{upper.controller.web_port}"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        async with http.get(f"{url}/api/interconnect/status") as resp:
            assert resp.status == 200
            status = await resp.json()
        async with http.get(f"{url}/api/terminals") as resp:
            assert resp.status == 200
    assert [p["ebrid"] for p in status["peers"]] == [PROVINCE]


async def test_upper_cancel_goes_through_the_desk_and_a_later_update_is_refused(upper: UpperCounty) -> None:
    """A Cancel from above stops the broadcast the way an operator's stop does: the policy record is
    cancelled and the decision recorded, so an Update of the cancelled message cannot put it back on air."""
    for t in upper.fleet.terminals:
        t.time_scale = 1.0  # play for the real duration so the broadcast is still live when cancelled
    ebm = short_ebm(upper.province)
    assert (await upper.province.send(ebm)).result_code is ResultCode.OK
    row = await upper.only_broadcast()
    bid = int(row["id"])

    async def playing() -> int:
        return sum(1 for t in upper.fleet.terminals if t.playing == row["ebm_id"])

    await wait_until(playing, lambda k: k == 586, within=20)
    _, cancel = await upper.province.send_ebm(MsgType.CANCEL, related_ebm_id=ebm.ebm_id)
    assert cancel.result_code is ResultCode.OK, cancel
    gone = await store.get_broadcast(upper.controller.engine, bid)
    assert gone is not None and gone["state"] == BroadcastState.CANCELLED
    desk = upper.controller.desk
    [stop] = [d for d in await desk.decisions(broadcast_id=bid) if d["action"] == str(Action.CANCEL_ORIGINAL)]
    assert stop["actor"] == "upper" and row["ebm_id"] in stop["reason_zh"], stop

    update, answer = await upper.province.send_ebm(
        related_ebm_id=ebm.ebm_id, title="大风红色预警", text="省气象台将大风预警升级为红色，请立即避险。"
    )
    assert answer.result_code is ResultCode.OTHER_ERROR, answer
    assert answer.response is not None and "已被取消" in getattr(answer.response.body, "result_desc", "")
    [refused] = [d for d in await desk.decisions() if update.ebm_id in d["source_key"]]
    assert (refused["action"], refused["reason"]) == (str(Action.REJECT), str(Reason.UPDATE_OF_CANCELLED))
    assert await store.count_broadcasts(upper.controller.engine) == 1  # nothing new on air
    await wait_until(playing, lambda k: k == 0, within=10)
