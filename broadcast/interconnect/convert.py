"""Conversions between the core's types and EBD bodies (平台间接口业务数据):

- EBM (from an upper platform) → MessageDraft (SourceKind.UPPER), and a county broadcast → EBM (上报);
- a broadcast snapshot → EBMStateResponse / EBMBrdItem (BrdStateCode, Coverage, ResBrdInfo).

The plain data the core hands over (`BroadcastSnapshot`, `AdapterCount`, `TerminalStatus`) lives in
`broadcast.interconnect.snapshot`, and the inventory and terminal link states → EBRxxInfo / EBRxxState in
`broadcast.interconnect.resources`; callers import those from there.
Pure functions: must never do I/O, read the clock or know about HTTP, tar packages or signatures.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum

from broadcast.codes import normalise_area_code
from broadcast.interconnect.ebd.model import (
    EBM,
    BrdStateCode,
    Coverage,
    EBMBrdItem,
    EBMStateResponse,
    MsgBasicInfo,
    MsgContent,
    RelatedInfo,
    ResBrdItem,
    ResBrdSystem,
    ResultCode,
)
from broadcast.interconnect.ebd.xml_build import format_time
from broadcast.interconnect.resources import (
    AdapterCodes,
    adapter_codes,
)
from broadcast.interconnect.snapshot import BroadcastSnapshot
from broadcast.model import (
    BroadcastState,
    Content,
    MessageDraft,
    MsgType,
    Severity,
    SourceKind,
    SourceRef,
)
from terminals.inventory_model import Inventory

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
