"""The EBD data packet model (应急广播数据包, GY/T 384 / GD/J 083): header, one body type per EBDType,
the receipt codes and the codec error type. Wire form: `xml_build` (writer), `xml_parse` (reader).

Frozen dataclasses and enums only; times are timezone-aware datetimes. Must never do I/O, read the
clock or know about tar packages and signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import ClassVar

from broadcast.model import MsgType


class EBDType(StrEnum):
    EBM = "EBM"
    EBM_STATE_REQUEST = "EBMStateRequest"
    EBM_STATE_RESPONSE = "EBMStateResponse"
    EBM_BRD_LOG = "EBMBrdLog"
    OMD_REQUEST = "OMDRequest"
    EBRPS_INFO = "EBRPSInfo"
    EBRST_INFO = "EBRSTInfo"
    EBRAS_INFO = "EBRASInfo"
    EBRBS_INFO = "EBRBSInfo"
    EBRDT_INFO = "EBRDTInfo"
    EBRPS_STATE = "EBRPSState"
    EBRAS_STATE = "EBRASState"
    EBRBS_STATE = "EBRBSState"
    EBRDT_STATE = "EBRDTState"
    CONNECTION_CHECK = "ConnectionCheck"
    EBD_RESPONSE = "EBDResponse"


class ResultCode(IntEnum):
    """EBDResponse ResultCode (eb-protocols §2). For 2–5 the receiver does nothing further."""

    RECEIVED = 0  # received, not processed
    OK = 1  # parsed and validated
    PARSE_FAILED = 2
    CONTENT_MISSING = 3
    SIGNATURE_FAILED = 4
    OTHER_ERROR = 5


class EbdErrorKind(StrEnum):
    TOO_LARGE = "too_large"
    MALFORMED = "malformed"  # not well-formed XML / not an EBD / not a tar
    FORBIDDEN_XML = "forbidden_xml"  # DTD, entity declarations
    UNSAFE_PACKAGE = "unsafe_package"  # traversal, links, too many members
    MISSING = "missing"  # a required element or package part is absent
    INVALID_VALUE = "invalid_value"  # present but unusable (bad id, time, number)
    UNSUPPORTED_TYPE = "unsupported_type"  # EBDType we do not implement

    @property
    def result_code(self) -> ResultCode:
        if self in (EbdErrorKind.MISSING, EbdErrorKind.INVALID_VALUE, EbdErrorKind.UNSUPPORTED_TYPE):
            return ResultCode.CONTENT_MISSING
        return ResultCode.PARSE_FAILED


class EbdError(Exception):
    """A packet we cannot accept. `ebd_id` is set when the header was readable; `where` names the element."""

    def __init__(
        self, kind: EbdErrorKind, message: str, *, ebd_id: str | None = None, where: str = ""
    ) -> None:
        self.kind = kind
        self.message = message
        self.ebd_id = ebd_id
        self.where = where
        super().__init__(f"[{kind.value}] {message}" + (f" (EBDID {ebd_id})" if ebd_id else ""))

    @property
    def result_code(self) -> ResultCode:
        return self.kind.result_code

    @property
    def result_desc(self) -> str:
        """A ResultDesc for the EBDResponse, read by the sending platform's operators (Chinese)."""
        where = f"（{self.where}）" if self.where else ""
        return _DESC_ZH[self.kind].format(where=where) + f" [{self.message}]"


_DESC_ZH = {
    EbdErrorKind.TOO_LARGE: "数据包过大，请拆分或压缩资源后重发",
    EbdErrorKind.MALFORMED: "数据包解析失败{where}，请检查 XML/tar 格式后重发",
    EbdErrorKind.FORBIDDEN_XML: "数据包含 DTD 或实体声明，已拒收；请去掉后重发",
    EbdErrorKind.UNSAFE_PACKAGE: "tar 包含不安全的成员（路径、链接或数量异常），已拒收；请按规范重新打包",
    EbdErrorKind.MISSING: "数据包内容缺失{where}，请补全后重发",
    EbdErrorKind.INVALID_VALUE: "数据包内容取值无效{where}，请更正后重发",
    EbdErrorKind.UNSUPPORTED_TYPE: "本平台不支持该数据包类型{where}",
}


class OMDType(StrEnum):
    EBRPS_INFO = "EBRPSInfo"
    EBRST_INFO = "EBRSTInfo"
    EBRAS_INFO = "EBRASInfo"
    EBRBS_INFO = "EBRBSInfo"
    EBRDT_INFO = "EBRDTInfo"
    EBRPS_STATE = "EBRPSState"
    EBRAS_STATE = "EBRASState"
    EBRBS_STATE = "EBRBSState"
    EBRDT_STATE = "EBRDTState"
    EBM_BRD_LOG = "EBMBrdLog"


class RptType(StrEnum):
    FULL = "Full"
    INCREMENTAL = "Incremental"


class BrdStateCode(IntEnum):
    """Broadcast state of an EBM (播发状态)."""

    NOT_PROCESSED = 0
    WAITING = 1
    BROADCASTING = 2
    SUCCEEDED = 3
    FAILED = 4
    CANCELLED = 5


class ResourceStateCode(IntEnum):
    """EBRxx State StateCode."""

    ON = 1
    OFF = 2
    FAULT = 3
    RECOVERED = 4
    BROADCASTING = 5


@dataclass(frozen=True)
class Node:
    """A generic element kept as-is: vendor extensions and nested parts we do not model (e.g. RadioParams)."""

    tag: str
    text: str = ""
    children: tuple[Node, ...] = ()


# ---- header ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EBDHeader:
    ebd_id: str
    src_ebrid: str
    dest_ebrid: str
    time: datetime
    src_url: str | None = None
    related_ebd_id: str | None = None
    version: str = "1.0"


# ---- EBM ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RelatedInfo:
    ebm_id: str | None = None
    ebi_id: str | None = None


@dataclass(frozen=True)
class MsgBasicInfo:
    msg_type: MsgType
    sender_name: str
    sender_code: str
    send_time: datetime
    event_type: str
    severity: int
    start_time: datetime
    end_time: datetime


@dataclass(frozen=True)
class Auxiliary:
    """A resource of an EBM: AuxiliaryType (2 MP3, 61 stream URL…), file name or URL, size, digest."""

    aux_type: int
    desc: str
    size: int | None = None
    digest: str | None = None


@dataclass(frozen=True)
class MsgContent:
    language_code: str
    title: str
    desc: str
    area_codes: tuple[str, ...]
    program_num: str | None = None
    auxiliaries: tuple[Auxiliary, ...] = ()


@dataclass(frozen=True)
class DispatchBrdSys:
    """EBRBS in a Dispatch: BrdSysType (comma list of type codes) and BrdSysInfo `(EBRID,flag,value)` list."""

    brd_sys_type: str
    brd_sys_info: str = ""


@dataclass(frozen=True)
class Dispatch:
    language_code: str | None = None
    ebrps: tuple[str, ...] = ()
    ebrst: tuple[str, ...] = ()
    ebras: tuple[str, ...] = ()
    ebrbs: tuple[DispatchBrdSys, ...] = ()


@dataclass(frozen=True)
class EBM:
    TYPE: ClassVar[EBDType] = EBDType.EBM
    ebm_id: str
    basic: MsgBasicInfo
    content: MsgContent
    related: RelatedInfo | None = None
    dispatch: tuple[Dispatch, ...] = ()
    ebm_version: str = "1"


# ---- state, records -------------------------------------------------------------------------


@dataclass(frozen=True)
class Coverage:
    coverage_rate: str | None = None  # kept as sent: a ratio ("0.95"); old CoveragePercent is converted
    area_codes: tuple[str, ...] = ()
    res_brd_stat: str | None = None  # "platforms,adapters,systems,terminals"


@dataclass(frozen=True)
class ResBrdSystem:
    rpt_time: datetime | None = None
    brd_sys_type: str | None = None
    brd_sys_info: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    file_url: str | None = None
    brd_state_code: int | None = None
    brd_state_desc: str | None = None


@dataclass(frozen=True)
class ResBrdItem:
    ebrps_id: str | None = None
    ebrst_id: str | None = None
    ebras_id: str | None = None
    ebrbs: tuple[ResBrdSystem, ...] = ()


@dataclass(frozen=True)
class EBMStateRequest:
    TYPE: ClassVar[EBDType] = EBDType.EBM_STATE_REQUEST
    ebm_id: str


@dataclass(frozen=True)
class EBMStateResponse:
    TYPE: ClassVar[EBDType] = EBDType.EBM_STATE_RESPONSE
    rpt_time: datetime
    ebm_id: str
    brd_state_code: int
    brd_state_desc: str = ""
    coverage: Coverage | None = None
    res_brd_info: tuple[ResBrdItem, ...] = ()


@dataclass(frozen=True)
class ReportParams:
    rpt_start_time: datetime | None = None
    rpt_end_time: datetime | None = None
    rpt_type: RptType | None = None


@dataclass(frozen=True)
class Unit:
    ebrps_id: str | None = None
    unit_id: str | None = None
    unit_name: str | None = None
    person_id: str | None = None
    person_name: str | None = None


@dataclass(frozen=True)
class EBMBrdItem:
    ebm_id: str
    basic: MsgBasicInfo | None = None
    content: MsgContent | None = None
    units: tuple[Unit, ...] = ()
    brd_state_code: int | None = None
    brd_state_desc: str | None = None
    coverage: Coverage | None = None
    res_brd_info: tuple[ResBrdItem, ...] = ()


@dataclass(frozen=True)
class EBMBrdLog:
    TYPE: ClassVar[EBDType] = EBDType.EBM_BRD_LOG
    items: tuple[EBMBrdItem, ...] = ()
    params: ReportParams | None = None


@dataclass(frozen=True)
class OMDRequest:
    TYPE: ClassVar[EBDType] = EBDType.OMD_REQUEST
    omd_type: OMDType
    params: ReportParams | None = None


@dataclass(frozen=True)
class ResourceInfo:
    """One record of an EBRxxInfo body. Type-specific simple and nested fields beyond these are in `extra`."""

    ebrid: str
    name: str = ""
    rpt_time: datetime | None = None
    rpt_type: str = "Sync"  # Sync = add/update, Delete
    related_ebrps_id: str | None = None
    related_ebrst_id: str | None = None
    related_ebras_id: str | None = None
    longitude: str | None = None
    latitude: str | None = None
    address: str | None = None
    contact: str | None = None
    phone_number: str | None = None
    url: str | None = None
    extra: tuple[Node, ...] = ()


@dataclass(frozen=True)
class ResourceState:
    ebrid: str
    state_code: int
    rpt_time: datetime | None = None
    state_desc: str = ""


@dataclass(frozen=True)
class _InfoBody:
    RECORD_TAG: ClassVar[str] = ""
    TYPE: ClassVar[EBDType]
    records: tuple[ResourceInfo, ...] = ()
    params: ReportParams | None = None


@dataclass(frozen=True)
class EBRPSInfo(_InfoBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRPS_INFO
    RECORD_TAG: ClassVar[str] = "EBRPS"


@dataclass(frozen=True)
class EBRSTInfo(_InfoBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRST_INFO
    RECORD_TAG: ClassVar[str] = "EBRST"


@dataclass(frozen=True)
class EBRASInfo(_InfoBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRAS_INFO
    RECORD_TAG: ClassVar[str] = "EBRAS"


@dataclass(frozen=True)
class EBRBSInfo(_InfoBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRBS_INFO
    RECORD_TAG: ClassVar[str] = "EBRBS"


@dataclass(frozen=True)
class EBRDTInfo(_InfoBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRDT_INFO
    RECORD_TAG: ClassVar[str] = "EBRDT"


@dataclass(frozen=True)
class _StateBody:
    RECORD_TAG: ClassVar[str] = ""
    TYPE: ClassVar[EBDType]
    records: tuple[ResourceState, ...] = ()
    params: ReportParams | None = None


@dataclass(frozen=True)
class EBRPSState(_StateBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRPS_STATE
    RECORD_TAG: ClassVar[str] = "EBRPS"


@dataclass(frozen=True)
class EBRASState(_StateBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRAS_STATE
    RECORD_TAG: ClassVar[str] = "EBRAS"


@dataclass(frozen=True)
class EBRBSState(_StateBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRBS_STATE
    RECORD_TAG: ClassVar[str] = "EBRBS"


@dataclass(frozen=True)
class EBRDTState(_StateBody):
    TYPE: ClassVar[EBDType] = EBDType.EBRDT_STATE
    RECORD_TAG: ClassVar[str] = "EBRDT"


@dataclass(frozen=True)
class ConnectionCheck:
    TYPE: ClassVar[EBDType] = EBDType.CONNECTION_CHECK
    rpt_time: datetime


@dataclass(frozen=True)
class EBDResponse:
    TYPE: ClassVar[EBDType] = EBDType.EBD_RESPONSE
    result_code: ResultCode
    result_desc: str = ""


InfoBody = EBRPSInfo | EBRSTInfo | EBRASInfo | EBRBSInfo | EBRDTInfo
StateBody = EBRPSState | EBRASState | EBRBSState | EBRDTState
Body = (
    EBM
    | EBMStateRequest
    | EBMStateResponse
    | EBMBrdLog
    | OMDRequest
    | InfoBody
    | StateBody
    | ConnectionCheck
    | EBDResponse
)

INFO_BODIES: dict[EBDType, type[_InfoBody]] = {
    c.TYPE: c for c in (EBRPSInfo, EBRSTInfo, EBRASInfo, EBRBSInfo, EBRDTInfo)
}
STATE_BODIES: dict[EBDType, type[_StateBody]] = {
    c.TYPE: c for c in (EBRPSState, EBRASState, EBRBSState, EBRDTState)
}


@dataclass(frozen=True)
class EBD:
    """One packet: header plus exactly one body; the EBDType is the body's."""

    header: EBDHeader
    body: Body

    @property
    def ebd_type(self) -> EBDType:
        return self.body.TYPE

    @property
    def ebd_id(self) -> str:
        return self.header.ebd_id
