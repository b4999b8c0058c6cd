"""Ten overlapping broadcasts of mixed priority on one street of the mixed county (IP terminals direct
and behind relaying front-ends, the FM transmitter, the cable head-end): daily programmes, drills,
blue/yellow/orange/red county CAP and upper-platform items cut in on each other. Every device ends in
the right state by its own ground truth (tests/contract/overlap.py)."""

from __future__ import annotations

from pathlib import Path

from tests.contract.county import CABLE_CODE, FM_CODE, mixed_county
from tests.contract.overlap import POLICY, final_state, scenario, submit, wait_settled
from tests.e2e.conftest import TOKENS

STREET = "530181001000"  # 连然街道: 102 terminals (16 behind relaying front-ends), FM and cable
RELAYED_VILLAGE = "530181001201"
OTHER_VILLAGE = "530181001009"


async def test_ten_overlapping_broadcasts_end_right_on_every_device(tmp_path: Path) -> None:
    async with mixed_county(tmp_path, tokens=TOKENS, time_scale=0.01, extra=POLICY) as county:
        items = scenario(STREET, RELAYED_VILLAGE, RELAYED_VILLAGE, OTHER_VILLAGE)
        assert len(items) == 10
        aired = await submit(county, items)
        await wait_settled(county, aired, within_s=60)
        checked, problems = await final_state(county, aired)
        assert problems == [], problems
        targets = {t.resource_code for t in county.controller.inventory.resolve([STREET])}
        assert checked == len(targets) and {FM_CODE, CABLE_CODE} <= targets
        # the upper-platform red outranks everything sent to the relaying village: it played there
        upper = next(a for a in aired if a.item.label == "upper-platform red")
        for ref in county.controller.inventory.resolve([RELAYED_VILLAGE]):
            sim = county.relayed[ref.resource_code]
            assert [p.completed for p in sim.played if p.ebm_id == upper.ebm_id] == [True]
