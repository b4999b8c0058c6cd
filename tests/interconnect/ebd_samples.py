"""Sample packets of every EBDType for the interconnect tests (imported by them; not a test module)."""

from __future__ import annotations

from datetime import datetime

from broadcast.clock import BEIJING
from broadcast.interconnect.ebd.model import (
    EBD,
    EBM,
    Auxiliary,
    Body,
    ConnectionCheck,
    Coverage,
    Dispatch,
    DispatchBrdSys,
    EBDHeader,
    EBDResponse,
    EBDType,
    EBMBrdItem,
    EBMBrdLog,
    EBMStateRequest,
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
    Node,
    OMDRequest,
    OMDType,
    RelatedInfo,
    ReportParams,
    ResBrdItem,
    ResBrdSystem,
    ResourceInfo,
    ResourceState,
    ResultCode,
    RptType,
    Unit,
)
from broadcast.model import MsgType

COUNTY = "45301810000000101010101"  # Anning county platform
CITY = "35301000000000101010101"
TERMINAL = "65301811010010314010401"
EBM_ID = f"{CITY}202611050001"
EBD_ID = f"10{CITY}2026110500000007"
T0 = datetime(2026, 11, 5, 9, 30, 0, tzinfo=BEIJING)


def t(minutes: int) -> datetime:
    return T0.replace(minute=(T0.minute + minutes) % 60, hour=T0.hour + (T0.minute + minutes) // 60)


BASIC = MsgBasicInfo(MsgType.ACTUAL, "昆明市应急管理局", CITY, T0, "11B03", 2, t(1), t(31))
CONTENT = MsgContent(
    "zho", "暴雨橙色预警", "昆明市气象台发布暴雨橙色预警信号：请注意防范 & 避险 <立即>。",
    ("530181000000", "530181101000"), None,
    (Auxiliary(2, "EBDR_warning.mp3", 48000, "ab" * 32), Auxiliary(61, "rtsp://10.0.0.5/live")),
)
RES_BRD = (ResBrdItem(COUNTY, None, None, (ResBrdSystem(
    T0, "0314", f"({TERMINAL},3,97400)", t(1), t(31), "http://10.0.0.9/rec.mp3", 3, "播发成功"),)),)
PARAMS = ReportParams(T0.replace(hour=8), T0, RptType.INCREMENTAL)
INFO = ResourceInfo(
    TERMINAL, "连然街道1号音柱", T0, "Sync", COUNTY, "45301810000000399010201", None, "102.4780", "24.9190",
    "连然街道", "张三", "0871-0000000", "http://10.0.0.7/", (Node("Square", "12.5"), Node("RadioParams", "", (
        Node("ChannelName", "安宁应急"), Node("Freq", "97400")))),
)

BODIES: dict[EBDType, Body] = {
    EBDType.EBM: EBM(EBM_ID, BASIC, CONTENT, RelatedInfo(ebm_id=f"{CITY}202611040003"), (
        Dispatch("zho", (COUNTY,), (), ("45301810000000314010201",), (DispatchBrdSys("0314,0301",
                 f"({TERMINAL},3,97400)"),)),)),
    EBDType.EBM_STATE_REQUEST: EBMStateRequest(EBM_ID),
    EBDType.EBM_STATE_RESPONSE: EBMStateResponse(
        T0, EBM_ID, 2, "播发中", Coverage("0.95", ("530181000000",), "1,2,3,586"), RES_BRD),
    EBDType.EBM_BRD_LOG: EBMBrdLog((EBMBrdItem(
        EBM_ID, BASIC, CONTENT, (Unit(COUNTY, "001", "安宁市应急管理局", "007", "李四"),),
        3, "播发成功", Coverage("1", (), "1,1,1,10"), RES_BRD),), PARAMS),
    EBDType.OMD_REQUEST: OMDRequest(OMDType.EBRDT_STATE, PARAMS),
    EBDType.EBRPS_INFO: EBRPSInfo((INFO,), PARAMS),
    EBDType.EBRST_INFO: EBRSTInfo((INFO,)),
    EBDType.EBRAS_INFO: EBRASInfo((INFO,)),
    EBDType.EBRBS_INFO: EBRBSInfo((INFO,)),
    EBDType.EBRDT_INFO: EBRDTInfo((INFO, ResourceInfo(COUNTY, rpt_type="Delete"))),
    EBDType.EBRPS_STATE: EBRPSState((ResourceState(COUNTY, 1, T0, "正常"),)),
    EBDType.EBRAS_STATE: EBRASState((ResourceState(COUNTY, 3, T0, "故障"),)),
    EBDType.EBRBS_STATE: EBRBSState((ResourceState(COUNTY, 5, None, ""),)),
    EBDType.EBRDT_STATE: EBRDTState((ResourceState(TERMINAL, 2, T0, "关机"),
                                     ResourceState(COUNTY, 4, T0, "恢复"))),
    EBDType.CONNECTION_CHECK: ConnectionCheck(T0),
    EBDType.EBD_RESPONSE: EBDResponse(ResultCode.OK, "已接收"),
}


def make_ebd(body: Body, *, related: str | None = None, url: str | None = "http://10.0.0.2:8080/ebd") -> EBD:
    return EBD(EBDHeader(EBD_ID, CITY, COUNTY, T0, url, related), body)
