"""Inventory → resource records for the upper platform (资源信息/状态上报, EBRxxInfo / EBRxxState).

Owns the mapping from the county inventory and terminal link states to EBRPS/EBRST/EBRAS/EBRBS/EBRDT
info and state records, Full or Incremental, the adapter type codes (`ADAPTER_TYPE_CODES`, `adapter_codes`)
and the broadcast-log report window.

Pure functions: must never do I/O, read the clock or know about HTTP, tar packages or signatures, and never
convert messages (EBM ↔ draft lives in `broadcast.interconnect.convert`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from broadcast.codes import ResourceSubtype
from broadcast.interconnect.ebd.model import (
    EBRASInfo,
    EBRASState,
    EBRBSInfo,
    EBRBSState,
    EBRDTInfo,
    EBRDTState,
    EBRPSInfo,
    EBRPSState,
    EBRSTInfo,
    OMDType,
    ReportParams,
    ResourceInfo,
    ResourceState,
    ResourceStateCode,
    RptType,
)
from broadcast.interconnect.snapshot import BroadcastSnapshot, TerminalStatus
from broadcast.model import (
    LinkState,
)
from terminals.inventory_model import Inventory

# ---- inventory → resource info / state ----------------------------------------------------------

ADAPTER_TYPE_CODES: Mapping[str, str] = {"ip_speaker": "0314", "fm": "0301", "cable_tv": "0302"}
_ADAPTER_NAMES_ZH: Mapping[str, str] = {
    "ip_speaker": "应急广播大喇叭系统",
    "fm": "调频广播",
    "cable_tv": "有线数字电视",
}


@dataclass(frozen=True)
class AdapterCodes:
    """Derived 23-digit codes of one adapter (EBRAS, subtype 02) and its broadcast system (EBRBS, 03)."""

    adapter: str
    type_code: str
    adapter_code: str
    system_code: str


def adapter_codes(inventory: Inventory) -> dict[str, AdapterCodes]:
    """County-level codes for each adapter in the inventory: level 4, the county's area, the adapter's
    resource type code, type sequence counted per type code."""
    out: dict[str, AdapterCodes] = {}
    seq: dict[str, int] = {}
    for name in sorted({t.adapter for t in inventory.terminals}):
        type_code = ADAPTER_TYPE_CODES.get(name, "0399")
        seq[type_code] = seq.get(type_code, 0) + 1
        stem = f"4{inventory.county.code}{type_code}{seq[type_code]:02d}"
        out[name] = AdapterCodes(
            name,
            type_code,
            f"{stem}{int(ResourceSubtype.ADAPTER):02d}01",
            f"{stem}{int(ResourceSubtype.BROADCAST_SYSTEM):02d}01",
        )
    return out


def _in_window(at: datetime | None, params: ReportParams | None) -> bool:
    if params is None or params.rpt_type is not RptType.INCREMENTAL:
        return True
    if at is None:
        return False
    if params.rpt_start_time is not None and at < params.rpt_start_time:
        return False
    return params.rpt_end_time is None or at <= params.rpt_end_time


_LINK_CODES = {
    LinkState.ONLINE: ResourceStateCode.ON,
    LinkState.OFFLINE: ResourceStateCode.OFF,
    LinkState.FAULT: ResourceStateCode.FAULT,
    LinkState.BROADCASTING: ResourceStateCode.BROADCASTING,
}
_LINK_DESC = {
    LinkState.ONLINE: "正常",
    LinkState.OFFLINE: "离线",
    LinkState.FAULT: "故障",
    LinkState.BROADCASTING: "正在播发",
}

InfoOrState = (
    EBRPSInfo
    | EBRSTInfo
    | EBRASInfo
    | EBRBSInfo
    | EBRDTInfo
    | EBRPSState
    | EBRASState
    | EBRBSState
    | EBRDTState
)


def resource_report(
    omd_type: OMDType,
    *,
    inventory: Inventory,
    states: Mapping[str, TerminalStatus],
    now: datetime,
    params: ReportParams | None = None,
    inventory_changed_at: datetime | None = None,
    platform_url: str | None = None,
) -> InfoOrState:
    """The EBRxxInfo / EBRxxState body answering an OMDRequest (or a periodic report).

    Full lists everything; Incremental lists info records when the inventory changed inside the window and
    state records whose state changed inside it.
    """
    ps = inventory.platform_code
    info_included = _in_window(inventory_changed_at, params)
    county = inventory.county
    lat, lon = f"{county.latitude:.6f}", f"{county.longitude:.6f}"
    codes = adapter_codes(inventory)
    if omd_type is OMDType.EBRPS_INFO:
        rec = ResourceInfo(
            ps,
            inventory.platform_name or inventory.name,
            rpt_time=now,
            longitude=lon,
            latitude=lat,
            address=inventory.name,
            url=platform_url,
        )
        return EBRPSInfo((rec,) if info_included else (), params)
    if omd_type is OMDType.EBRST_INFO:
        recs = [
            ResourceInfo(f.resource_code, f.name, rpt_time=now, related_ebrps_id=ps)
            for f in inventory.front_ends
        ]
        return EBRSTInfo(tuple(recs) if info_included else (), params)
    if omd_type is OMDType.EBRAS_INFO:
        recs = [
            ResourceInfo(
                c.adapter_code,
                f"{_ADAPTER_NAMES_ZH.get(c.adapter, c.adapter)}适配器",
                rpt_time=now,
                related_ebrps_id=ps,
            )
            for c in codes.values()
        ]
        return EBRASInfo(tuple(recs) if info_included else (), params)
    if omd_type is OMDType.EBRBS_INFO:
        recs = [
            ResourceInfo(
                c.system_code,
                _ADAPTER_NAMES_ZH.get(c.adapter, c.adapter),
                rpt_time=now,
                related_ebrps_id=ps,
                related_ebras_id=c.adapter_code,
            )
            for c in codes.values()
        ]
        return EBRBSInfo(tuple(recs) if info_included else (), params)
    if omd_type is OMDType.EBRDT_INFO:
        recs = [
            ResourceInfo(
                t.resource_code,
                t.name,
                rpt_time=now,
                related_ebrps_id=ps,
                related_ebrst_id=t.front_end or None,
                longitude=f"{t.longitude:.6f}",
                latitude=f"{t.latitude:.6f}",
            )
            for t in inventory.terminals
        ]
        return EBRDTInfo(tuple(recs) if info_included else (), params)
    if omd_type is OMDType.EBRPS_STATE:
        full = params is None or params.rpt_type is not RptType.INCREMENTAL
        return EBRPSState(
            (ResourceState(ps, int(ResourceStateCode.ON), now, "正常"),) if full else (), params
        )
    if omd_type is OMDType.EBRDT_STATE:
        rows = [
            ResourceState(
                t.resource_code, int(_LINK_CODES[st.state]), st.changed_at or now, _LINK_DESC[st.state]
            )
            for t in inventory.terminals
            if (st := states.get(t.resource_code, TerminalStatus(LinkState.OFFLINE))) is not None
            and _in_window(st.changed_at, params)
        ]
        return EBRDTState(tuple(rows), params)
    if omd_type in (OMDType.EBRAS_STATE, OMDType.EBRBS_STATE):
        summary: list[ResourceState] = []
        for c in codes.values():
            mine = [
                states.get(t.resource_code, TerminalStatus(LinkState.OFFLINE))
                for t in inventory.terminals
                if t.adapter == c.adapter
            ]
            changed = max((s.changed_at for s in mine if s.changed_at is not None), default=None)
            if not _in_window(changed, params):
                continue
            up = any(s.state in (LinkState.ONLINE, LinkState.BROADCASTING) for s in mine)
            code = ResourceStateCode.ON if up else ResourceStateCode.FAULT
            ebrid = c.adapter_code if omd_type is OMDType.EBRAS_STATE else c.system_code
            online = sum(1 for s in mine if s.state in (LinkState.ONLINE, LinkState.BROADCASTING))
            summary.append(
                ResourceState(ebrid, int(code), changed or now, f"{online}/{len(mine)} 个终端在线")
            )
        body = EBRASState if omd_type is OMDType.EBRAS_STATE else EBRBSState
        return body(tuple(summary), params)
    raise ValueError(f"{omd_type} is not a resource report")


def brd_log_window(
    params: ReportParams | None, snapshots: Sequence[BroadcastSnapshot]
) -> list[BroadcastSnapshot]:
    """Broadcasts whose start lies in the report window (all of them without a window)."""
    if params is None:
        return list(snapshots)
    return [
        s
        for s in snapshots
        if (params.rpt_start_time is None or s.draft.start_at >= params.rpt_start_time)
        and (params.rpt_end_time is None or s.draft.start_at <= params.rpt_end_time)
    ]
