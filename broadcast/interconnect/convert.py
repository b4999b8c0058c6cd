"""Conversions between the core's types and EBD bodies (平台间接口业务数据):

- EBM (from an upper platform) → MessageDraft (SourceKind.UPPER), and a county broadcast → EBM (上报);
- a broadcast snapshot → EBMStateResponse / EBMBrdItem (BrdStateCode, Coverage, ResBrdInfo);
- the inventory and terminal link states → EBRxxInfo / EBRxxState, Full or Incremental.

Also defines the plain data the core hands over (`BroadcastSnapshot`, `AdapterCount`, `TerminalStatus`).
Pure functions: must never do I/O, read the clock or know about HTTP, tar packages or signatures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from broadcast.codes import ResourceSubtype, normalise_area_code
from broadcast.interconnect.ebd import (
    EBM,
    BrdStateCode,
    Coverage,
    EBMBrdItem,
    EBMStateResponse,
    EBRASInfo,
    EBRASState,
    EBRBSInfo,
    EBRBSState,
    EBRDTInfo,
    EBRDTState,
    EBRPSInfo,
    EBRPSState,
    EBRSTInfo,
    MsgBasicInfo,
    MsgContent,
    OMDType,
    RelatedInfo,
    ReportParams,
    ResBrdItem,
    ResBrdSystem,
    ResourceInfo,
    ResourceState,
    ResourceStateCode,
    ResultCode,
    RptType,
)
from broadcast.interconnect.xml_build import format_time
from broadcast.model import (
    BroadcastState,
    Content,
    LinkState,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
)
from terminals.inventory import Inventory

# ---- data handed over by the core ---------------------------------------------------------------


@dataclass(frozen=True)
class AdapterCount:
    """Deliveries of one broadcast through one adapter (transmission system)."""

    adapter: str
    targets: int
    played: int
    failed: int


@dataclass(frozen=True)
class BroadcastSnapshot:
    """What the core knows about one broadcast right now. `ebm_id` is the county's id of the broadcast."""

    ebm_id: str
    state: BroadcastState
    draft: MessageDraft
    changed_at: datetime
    targets: int = 0
    played: int = 0
    failed: int = 0
    covered_area_codes: tuple[str, ...] = ()
    by_adapter: tuple[AdapterCount, ...] = ()
    started_at: datetime | None = None
    finished_at: datetime | None = None
    audio_url: str | None = None


@dataclass(frozen=True)
class TerminalStatus:
    state: LinkState
    changed_at: datetime | None = None


# ---- EBM → draft --------------------------------------------------------------------------------


class ConvertFault(StrEnum):
    MISSING = "missing"
    INVALID = "invalid"


class ConvertError(ValueError):
    """An EBM whose content cannot become a broadcast; answered with ResultCode 3."""

    def __init__(self, fault: ConvertFault, message: str, *, ebm_id: str) -> None:
        self.fault = fault
        self.ebm_id = ebm_id
        self.message = message
        super().__init__(f"EBM {ebm_id}: {message}")

    @property
    def result_code(self) -> ResultCode:
        return ResultCode.CONTENT_MISSING


def ebm_to_draft(ebm: EBM, *, src_ebrid: str) -> MessageDraft:
    """An upper platform's EBM as a draft of the core (SourceKind.UPPER ⇒ the upper-emergency priority).

    Audio resources (Auxiliary) are not carried by a draft: they are noted in `warnings` and the county
    synthesises speech from MsgDesc (the Lishui behaviour when no audio is usable).
    """
    b, c = ebm.basic, ebm.content

    def bad(message: str, fault: ConvertFault = ConvertFault.INVALID) -> ConvertError:
        return ConvertError(fault, message, ebm_id=ebm.ebm_id)

    warnings: list[str] = []
    try:
        severity = Severity(int(b.severity))
    except ValueError:
        severity = Severity.UNKNOWN
        warnings.append(f"未知的 Severity {b.severity}，按未分级处理")
    if not c.area_codes:
        raise bad("MsgContent/AreaCode is empty", ConvertFault.MISSING)
    try:
        areas = tuple(dict.fromkeys(normalise_area_code(a) for a in c.area_codes))
    except ValueError as exc:
        raise bad(f"MsgContent/AreaCode: {exc}") from None
    title, text = c.title.strip(), c.desc.strip()
    if not title and not text:
        raise bad("MsgContent has neither MsgTitle nor MsgDesc", ConvertFault.MISSING)
    for aux in c.auxiliaries:
        warnings.append(f"上级资源 {aux.desc}（类型 {aux.aux_type}）未直接使用，按文本合成播报")
    related = ebm.related.ebm_id if ebm.related is not None else None
    if b.msg_type is MsgType.CANCEL and not related:
        raise bad("a cancel (MsgType 2) needs RelatedInfo/EBMID", ConvertFault.MISSING)
    try:
        return MessageDraft(
            msg_type=b.msg_type,
            event_type=b.event_type.strip(),
            severity=severity,
            sender_name=b.sender_name,
            sender_code=b.sender_code,
            sent_at=b.send_time,
            start_at=b.start_time,
            end_at=b.end_time,
            area_codes=areas,
            contents=(Content(c.language_code or "zho", title or text[:40], text or title),),
            source=SourceRef(SourceKind.UPPER, src_ebrid, ebm.ebm_id, format_time(b.send_time)),
            related_ebm_id=related,
            warnings=tuple(warnings),
        )
    except ValueError as exc:
        raise bad(str(exc)) from None


def draft_to_ebm(ebm_id: str, draft: MessageDraft, *, platform_name: str, platform_code: str) -> EBM:
    """A county broadcast as an EBM for reporting upward (上报)."""
    content = draft.primary
    return EBM(
        ebm_id=ebm_id,
        basic=MsgBasicInfo(
            msg_type=draft.msg_type,
            sender_name=platform_name,
            sender_code=platform_code,
            send_time=draft.sent_at,
            event_type=draft.event_type,
            severity=int(draft.severity),
            start_time=draft.start_at,
            end_time=draft.end_at,
        ),
        content=MsgContent(content.language, content.title, content.text, draft.area_codes),
        related=RelatedInfo(ebm_id=draft.related_ebm_id) if draft.related_ebm_id else None,
    )


# ---- broadcast state ----------------------------------------------------------------------------

_STATE_DESC = {
    BrdStateCode.NOT_PROCESSED: "未处理",
    BrdStateCode.WAITING: "等待播发",
    BrdStateCode.BROADCASTING: "正在播发",
    BrdStateCode.SUCCEEDED: "播发成功",
    BrdStateCode.FAILED: "播发失败",
    BrdStateCode.CANCELLED: "已取消",
}


def brd_state(snap: BroadcastSnapshot, *, success_ratio: float = 1.0) -> tuple[BrdStateCode, str]:
    """BrdStateCode and a Chinese description. A finished broadcast succeeded when at least
    `success_ratio` of its targets played; fewer counts as failed ("not as required")."""
    s = snap.state
    if s in (BroadcastState.RECEIVED, BroadcastState.PENDING_APPROVAL):
        code = BrdStateCode.NOT_PROCESSED
    elif s is BroadcastState.RENDERING:
        code = BrdStateCode.WAITING
    elif s is BroadcastState.BROADCASTING:
        code = (
            BrdStateCode.WAITING
            if snap.started_at is None and snap.played == 0 and snap.draft.start_at > snap.changed_at
            else BrdStateCode.BROADCASTING
        )
    elif s is BroadcastState.CANCELLED:
        code = BrdStateCode.CANCELLED
    elif s in (BroadcastState.COMPLETED, BroadcastState.EXPIRED):
        ok = snap.targets > 0 and snap.played / snap.targets >= success_ratio - 1e-9
        code = BrdStateCode.SUCCEEDED if ok else BrdStateCode.FAILED
    else:  # REJECTED, FAILED
        code = BrdStateCode.FAILED
    desc = _STATE_DESC[code]
    if s is BroadcastState.REJECTED:
        desc += "（本级审核未通过）"
    elif code in (BrdStateCode.SUCCEEDED, BrdStateCode.FAILED) and snap.targets:
        desc += f"（{snap.played}/{snap.targets} 个终端播出）"
    return code, desc


def _coverage(snap: BroadcastSnapshot) -> Coverage:
    rate = snap.played / snap.targets if snap.targets else 0.0
    adapters = sum(1 for a in snap.by_adapter if a.targets > 0)
    return Coverage(
        coverage_rate=f"{rate:.2f}",
        area_codes=snap.covered_area_codes,
        res_brd_stat=f"1,{adapters},{adapters},{snap.targets}",
    )


def _res_brd_info(
    snap: BroadcastSnapshot, codes: Mapping[str, AdapterCodes], now: datetime
) -> tuple[ResBrdItem, ...]:
    items: list[ResBrdItem] = []
    for a in snap.by_adapter:
        ac = codes.get(a.adapter)
        if ac is None or a.targets == 0:
            continue
        if a.played == a.targets:
            code = (
                BrdStateCode.SUCCEEDED
                if snap.state is not BroadcastState.BROADCASTING
                else BrdStateCode.BROADCASTING
            )
        elif snap.state is BroadcastState.BROADCASTING:
            code = BrdStateCode.BROADCASTING
        elif snap.state is BroadcastState.CANCELLED:
            code = BrdStateCode.CANCELLED
        else:
            code = BrdStateCode.FAILED
        items.append(
            ResBrdItem(
                ebras_id=ac.adapter_code,
                ebrbs=(
                    ResBrdSystem(
                        rpt_time=now,
                        brd_sys_type=ac.type_code,
                        start_time=snap.started_at,
                        end_time=snap.finished_at,
                        brd_state_code=int(code),
                        brd_state_desc=f"{_STATE_DESC[code]}（{a.played}/{a.targets}）",
                    ),
                ),
            )
        )
    return tuple(items)


def state_response(
    snap: BroadcastSnapshot,
    *,
    ebm_id: str,
    now: datetime,
    inventory: Inventory,
    success_ratio: float = 1.0,
) -> EBMStateResponse:
    """EBMStateResponse for a broadcast; `ebm_id` is the id the receiver knows (the upper's EBMID)."""
    code, desc = brd_state(snap, success_ratio=success_ratio)
    return EBMStateResponse(
        rpt_time=now,
        ebm_id=ebm_id,
        brd_state_code=int(code),
        brd_state_desc=desc,
        coverage=_coverage(snap),
        res_brd_info=_res_brd_info(snap, adapter_codes(inventory), now),
    )


def brd_item(
    snap: BroadcastSnapshot,
    *,
    ebm_id: str,
    now: datetime,
    inventory: Inventory,
    platform_name: str,
    platform_code: str,
) -> EBMBrdItem:
    ebm = draft_to_ebm(ebm_id, snap.draft, platform_name=platform_name, platform_code=platform_code)
    code, desc = brd_state(snap)
    return EBMBrdItem(
        ebm_id=ebm_id,
        basic=ebm.basic,
        content=ebm.content,
        brd_state_code=int(code),
        brd_state_desc=desc,
        coverage=_coverage(snap),
        res_brd_info=_res_brd_info(snap, adapter_codes(inventory), now),
    )


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
