"""CAP → EBM conversion (as in T/AHMS 0009-2023): a parsed `CapAlert` becomes a `MessageDraft`.

Owns the mapping rules; never parses XML (see `cap`), never does I/O, never reads the clock (``now`` is
passed in), never decides whether to broadcast (that is the policy layer's job — it gets the facts:
``expired``, ``references``, ``event.guessed`` and the draft's warnings).

Rules:
- broadcast content = the zh-CN info (language zh*, or an unlabelled info written in Chinese); every other
  info is kept as an extra `Content` with its language mapped to GB/T 4880.2 three-letter codes (zho, eng…);
- severity: a colour word (红色/橙色/黄色/蓝色, the last one mentioned) in the Chinese headline, else in the
  Chinese event, else a grade Ⅰ/Ⅱ/Ⅲ/Ⅳ级, wins over CAP severity Extreme/Severe/Moderate/Minor → 1/2/3/4;
- event → 5-character code by `cap_events.event_code` (Chinese event, Chinese headline, English event);
- status Exercise/Test → MsgType.PLATFORM_DRILL (never an actual broadcast); System/Draft, msgType
  Ack/Error and scope Private → `CapError(NOT_BROADCASTABLE)`; Alert/Update → ACTUAL with
  ``related_ebm_id`` None (Updates are linked by the policy layer through ``references``); Cancel → CANCEL
  (a Cancel with status Exercise/Test is still a CANCEL; ``cap_status`` tells the policy layer);
- start = onset or effective or sent; end = expires or start + default_duration; ``expired`` when
  end <= now;
- area codes = CPEAS geocodes normalised to 12 digits; other geocodes are reported in ``untargetable``;
  a code ``known_area`` rejects is an error naming it; no code, polygon or circle at all is an error;
- sender code = the 14-digit office code prefix of the identifier (CMA: ``53018141600000_2024…``);
- ``SourceRef.sent`` = ``sent.isoformat()``, the same canonical form the parser gives the ``sent`` of each
  reference, so an Update/Cancel finds its original by ``SourceRef(CAP, *reference).key``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from broadcast.codes import normalise_area_code
from broadcast.model import Content, MessageDraft, MsgType, Severity, SourceKind, SourceRef
from broadcast.sources.cap.errors import CapError, CapErrorKind
from broadcast.sources.cap.events import EventMatch, event_code
from broadcast.sources.cap.model import CapAlert, CapInfo, CapMsgType, CapResource, CapScope, CapStatus

_CAP_SEVERITY = {
    "Extreme": Severity.RED,
    "Severe": Severity.ORANGE,
    "Moderate": Severity.YELLOW,
    "Minor": Severity.BLUE,
}
_COLOURS = {"红色": Severity.RED, "橙色": Severity.ORANGE, "黄色": Severity.YELLOW, "蓝色": Severity.BLUE}
_COLOUR_RE = re.compile("红色|橙色|黄色|蓝色")
_GRADES = {"Ⅰ": Severity.RED, "Ⅱ": Severity.ORANGE, "Ⅲ": Severity.YELLOW, "Ⅳ": Severity.BLUE}
_GRADE_RE = re.compile(r"(Ⅳ|Ⅲ|Ⅱ|Ⅰ)\s*级")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_SENDER_CODE = re.compile(r"^(\d{14})_")

# RFC 5646 primary subtag → GB/T 4880.2 (ISO 639-2/T) code, for languages a Yunnan county may meet.
_LANGUAGES = {
    "zh": "zho",
    "cmn": "zho",
    "yue": "yue",
    "en": "eng",
    "bo": "bod",
    "ug": "uig",
    "mn": "mon",
    "ii": "iii",
    "za": "zha",
    "ko": "kor",
    "kk": "kaz",
    "ja": "jpn",
    "ru": "rus",
    "fr": "fra",
    "vi": "vie",
    "lo": "lao",
    "my": "mya",
    "th": "tha",
}


@dataclass(frozen=True)
class CapConversion:
    draft: MessageDraft
    references: tuple[tuple[str, str, str], ...]
    untargetable: tuple[str, ...]  # "valueName=value" of geocodes that are not CPEAS codes
    polygons: tuple[Sequence[tuple[float, float]], ...]  # rings of (lat, lon): `CapRing`s, made lazily
    circles: tuple[tuple[float, float, float], ...]  # (lat, lon, radius_km)
    audio_resources: tuple[CapResource, ...]
    expired: bool
    event: EventMatch
    cap_status: CapStatus
    cap_msg_type: CapMsgType


def gb_language(cap_language: str) -> str:
    """Map a CAP (RFC 5646) language like "zh-CN" / "en-US" to a GB/T 4880.2 code like "zho" / "eng"."""
    primary = cap_language.strip().lower().replace("_", "-").split("-")[0]
    if primary in _LANGUAGES:
        return _LANGUAGES[primary]
    return primary if len(primary) == 3 and primary.isalpha() else "und"


def _is_zh(info: CapInfo) -> bool:
    if info.language:
        return gb_language(info.language) == "zho"
    return bool(_CJK.search(info.headline + info.description + info.event))


def _severity(info: CapInfo | None, infos: tuple[CapInfo, ...], warnings: list[str]) -> Severity:
    cap_sev = Severity.UNKNOWN
    for candidate in (info, *infos):
        if candidate is not None and candidate.severity in _CAP_SEVERITY:
            cap_sev = _CAP_SEVERITY[candidate.severity]
            break
    if info is None:
        return cap_sev
    for text in (info.headline, info.event):
        colours = _COLOUR_RE.findall(text)
        if colours:
            found = _COLOURS[colours[-1]]
            if cap_sev not in (Severity.UNKNOWN, found):
                warnings.append(
                    f"标题颜色「{colours[-1]}」与 CAP severity 不一致，按标题定为 {found.colour_zh}预警"
                )
            return found
    grades = _GRADE_RE.findall(info.headline)
    if grades:
        return _GRADES[grades[-1]]
    return cap_sev


def _msg_type(alert: CapAlert) -> MsgType:
    ident = alert.identifier
    if alert.status in (CapStatus.SYSTEM, CapStatus.DRAFT):
        raise CapError(
            CapErrorKind.NOT_BROADCASTABLE,
            f"CAP 状态为 {alert.status}（系统消息/草稿），不能播发；"
            "如需播发请让发布单位以 Actual 状态重新发布",
            identifier=ident,
        )
    if alert.msg_type in (CapMsgType.ACK, CapMsgType.ERROR):
        raise CapError(
            CapErrorKind.NOT_BROADCASTABLE,
            f"CAP 消息类型为 {alert.msg_type}（回执/错误通知），不是预警，不能播发",
            identifier=ident,
        )
    if alert.scope is CapScope.PRIVATE:
        raise CapError(
            CapErrorKind.NOT_BROADCASTABLE,
            "CAP 范围为 Private（定向私有消息），不能向公众播发；如需播发请发布单位改为 Public",
            identifier=ident,
        )
    if alert.msg_type is CapMsgType.CANCEL:
        return MsgType.CANCEL
    if alert.status in (CapStatus.EXERCISE, CapStatus.TEST):
        return MsgType.PLATFORM_DRILL
    return MsgType.ACTUAL


Ring = Sequence[tuple[float, float]]
Circle = tuple[float, float, float]


def _areas(
    alert: CapAlert, ordered: list[CapInfo], known_area: Callable[[str], bool] | None
) -> tuple[tuple[str, ...], tuple[str, ...], list[Ring], list[Circle]]:
    codes: list[str] = []
    untargetable: list[str] = []
    polygons: list[Ring] = []
    circles: list[Circle] = []
    done: set[tuple[str, str]] = set()  # the infos of one alert usually repeat the same areas
    for info in ordered:
        for area in info.areas:
            for name, value in area.geocodes:
                if (name, value) in done:
                    continue
                done.add((name, value))
                if not name.strip().lower().replace(" ", "").startswith("cpeas"):
                    item = f"{name}={value}"
                    if item not in untargetable:
                        untargetable.append(item)
                    continue
                try:
                    code = normalise_area_code(value)
                except ValueError:
                    raise CapError(
                        CapErrorKind.BAD_VALUE,
                        f"区域「{area.area_desc}」的行政区划代码 {value!r} 不是 6/9/12 位数字，"
                        "请修正发布系统的区域代码",
                        identifier=alert.identifier,
                    ) from None
                if known_area is not None and not known_area(code):
                    raise CapError(
                        CapErrorKind.UNKNOWN_AREA,
                        f"区域「{area.area_desc}」的代码 {code} 不在本平台辖区内，无法确定播发终端；"
                        "请核对区域代码或在辖区配置中补充",
                        identifier=alert.identifier,
                    )
                if code not in codes:
                    codes.append(code)
            if area.polygons:
                polygons.extend(p for p in area.polygons if p not in polygons)
            if area.circles:
                circles.extend(c for c in area.circles if c not in circles)
    return tuple(codes), tuple(untargetable), polygons, circles


def _content(info: CapInfo, language: str) -> Content:
    title = info.headline or info.event
    text = info.description
    if info.instruction and info.instruction not in text:
        text = f"{text}\n{info.instruction}" if text else info.instruction
    return Content(language=language, title=title, text=text or title)


def to_draft(
    alert: CapAlert,
    *,
    now: datetime,
    default_duration: timedelta = timedelta(hours=6),
    known_area: Callable[[str], bool] | None = None,
) -> CapConversion:
    """Convert a parsed CAP alert into a message draft; raise `CapError` when it cannot be broadcast."""
    ident = alert.identifier
    warnings = list(alert.warnings)
    msg_type = _msg_type(alert)

    zh = next((i for i in alert.infos if _is_zh(i)), None)
    if zh is None and alert.infos:
        warnings.append("CAP 没有中文（zh-CN）info 块，按第一个 info 块播发，请确认播发文字")
    main = zh or (alert.infos[0] if alert.infos else None)
    ordered = ([main] if main else []) + [i for i in alert.infos if i is not main]

    if main is None and msg_type is not MsgType.CANCEL:
        raise CapError(
            CapErrorKind.MISSING_FIELD,
            "CAP 文档没有 info 块，没有可播发的预警内容；请检查发布系统输出",
            identifier=ident,
        )

    contents: list[Content] = []
    for info in ordered:
        language = "zho" if info is zh else gb_language(info.language or "en-US")
        content = _content(info, language)
        if content.title or content.text:
            contents.append(content)
    if not contents:
        if msg_type is not MsgType.CANCEL:
            raise CapError(
                CapErrorKind.MISSING_FIELD,
                "CAP info 块缺少 headline/description，没有可播发的文字；请检查发布系统输出",
                identifier=ident,
            )
        contents.append(Content("zho", "解除预警", alert.note or "预警已解除"))

    event = event_code(
        [t for t in ((zh.event, zh.headline) if zh else ()) if t],
        [t for i in ordered if i is not zh for t in (i.event, i.headline) if t],
        [c for i in ordered for c in i.category],
    )
    if event.guessed:
        warnings.append(f"未能识别预警事件类型，按 {event.code} 处理，请人工确认")
    severity = _severity(main, alert.infos, warnings)

    start = next((t for i in ordered for t in (i.onset, i.effective) if t is not None), alert.sent)
    expires = next((i.expires for i in ordered if i.expires is not None), None)
    end = expires if expires is not None else start + default_duration
    if end <= start:
        raise CapError(
            CapErrorKind.BAD_VALUE,
            f"CAP 失效时间 expires（{end.isoformat()}）不晚于开始时间（{start.isoformat()}），"
            "请检查发布系统的时间",
            identifier=ident,
        )
    expired = end <= now
    if expired:
        warnings.append(f"预警已于 {end.isoformat()} 失效")

    codes, untargetable, polygons, circles = _areas(alert, ordered, known_area)
    if untargetable:
        warnings.append("以下区域代码不是 CPEAS 行政区划代码，无法定位终端：" + "、".join(untargetable))
    if not codes and msg_type is not MsgType.CANCEL:
        if not polygons and not circles:
            raise CapError(
                CapErrorKind.NO_AREA,
                "CAP 没有可用的区域（CPEAS 行政区划代码、多边形或圆形），无法确定播发范围；"
                "请让发布单位补充区域代码",
                identifier=ident,
            )
        warnings.append("CAP 只给出了多边形/圆形区域，没有行政区划代码")
    if alert.scope is CapScope.RESTRICTED:
        warnings.append("CAP 范围为 Restricted（限定范围），请确认是否可以向公众播发")
    if msg_type is MsgType.CANCEL and not alert.references:
        warnings.append("取消消息没有 references，无法确定要取消的预警，请人工处理")

    m = _SENDER_CODE.match(ident)
    sender_code = m.group(1) if m else ""
    if not m:
        warnings.append(f"identifier {ident!r} 不以 14 位发布单位代码开头，发布单位代码留空")

    audio: list[CapResource] = []
    for info in ordered:
        audio.extend(r for r in info.resources if r.mime.lower().startswith("audio/") and r not in audio)

    draft = MessageDraft(
        msg_type=msg_type,
        event_type=event.code,
        severity=severity,
        sender_name=(main.sender_name if main else "") or alert.sender,
        sender_code=sender_code,
        sent_at=alert.sent,
        start_at=start,
        end_at=end,
        area_codes=codes,
        contents=tuple(contents),
        source=SourceRef(
            kind=SourceKind.CAP, sender=alert.sender, identifier=ident, sent=alert.sent.isoformat()
        ),
        related_ebm_id=None,
        warnings=tuple(warnings),
    )
    return CapConversion(
        draft=draft,
        references=alert.references,
        untargetable=untargetable,
        polygons=tuple(polygons),
        circles=tuple(circles),
        audio_resources=tuple(audio),
        expired=expired,
        event=event,
        cap_status=alert.status,
        cap_msg_type=alert.msg_type,
    )
