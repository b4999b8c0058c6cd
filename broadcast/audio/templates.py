"""Broadcast templates (播报模板): turn a message draft into the title and the spoken text of a broadcast.

Owns the template file format (config/templates.toml, read with tomllib), choosing a template per message
type (实际播发 / 演练 / 解除), severity and event, filling the documented placeholders, the drill framing
(a drill is announced as 演练 at its start and its end, whatever the template says) and the small loader of
Chinese event names from config/event-types.tsv. Every problem in the configuration is reported at load
time, naming the template, never halfway through a broadcast.

It must never synthesise audio, dispatch, read the clock or change the message; it only produces text.
"""

from __future__ import annotations

import re
import string
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from broadcast.audio.normalize import normalise_for_speech
from broadcast.clock import BEIJING
from broadcast.model import MessageDraft, MsgType, Severity

__all__ = [
    "DEFAULT_EVENT_TYPES_PATH",
    "DEFAULT_TEMPLATES_PATH",
    "FIELDS",
    "SpokenText",
    "Template",
    "TemplateError",
    "TemplateErrorKind",
    "TemplateKind",
    "TemplateSet",
    "event_name",
    "load_event_names",
    "load_templates",
    "spoken_time",
]

_CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
DEFAULT_TEMPLATES_PATH = _CONFIG_DIR / "templates.toml"
DEFAULT_EVENT_TYPES_PATH = _CONFIG_DIR / "event-types.tsv"

# The placeholders a template may use; see config/templates.toml for their meaning.
FIELDS: frozenset[str] = frozenset(
    {"county", "sender", "event_name", "event_code", "colour", "grade", "title", "text", "start", "end"}
)

_FIELD_LIST = "、".join("{" + name + "}" for name in sorted(FIELDS))
_DRILL_WORD = "演练"
_DRILL_TITLE_MARK = "【演练】"
_GENERIC_EVENT_NAME = "突发事件"
_TEMPLATE_KEYS = frozenset({"id", "kind", "severity", "event", "title", "body"})
_EVENT_PREFIX = re.compile(r"^\d{1,2}$|^\d{2}[0-9A-Z]\d{0,2}$")


class TemplateKind(StrEnum):
    """Which family of templates a message uses."""

    ACTUAL = "actual"  # 实际播发
    DRILL = "drill"  # 演练 (platform, front-end and terminal drills alike)
    CANCEL = "cancel"  # 解除 / 取消播发

    @classmethod
    def of(cls, msg_type: MsgType) -> TemplateKind:
        if msg_type.is_drill:
            return cls.DRILL
        if msg_type is MsgType.CANCEL:
            return cls.CANCEL
        return cls.ACTUAL


class TemplateErrorKind(StrEnum):
    FILE_NOT_FOUND = "file_not_found"
    INVALID_TOML = "invalid_toml"
    INVALID_ENTRY = "invalid_entry"  # a key missing, of the wrong type, or not known
    UNKNOWN_PLACEHOLDER = "unknown_placeholder"
    INVALID_PLACEHOLDER = "invalid_placeholder"  # bad brace syntax, attribute/index access, format spec
    DUPLICATE_ID = "duplicate_id"
    DUPLICATE_MATCH = "duplicate_match"  # two templates for the same kind, severity and event
    NO_FALLBACK = "no_fallback"  # a kind without a template that has neither severity nor event
    INVALID_DRILL_FRAME = "invalid_drill_frame"
    INVALID_EVENT_TYPES = "invalid_event_types"


class TemplateError(Exception):
    """A configuration problem, with the file and the template (if any) it concerns.

    str(error) is a Chinese message for the person editing the configuration, saying what to change.
    """

    def __init__(self, kind: TemplateErrorKind, message: str, *, path: Path, template_id: str = "") -> None:
        where = f"{path}" + (f"，模板 {template_id!r}" if template_id else "")
        super().__init__(f"{where}：{message}")
        self.kind = kind
        self.path = path
        self.template_id = template_id


@dataclass(frozen=True)
class SpokenText:
    """What to show and what to say: `body` is already normalised for speech; `title` is as written."""

    title: str
    body: str
    template_id: str


@dataclass(frozen=True)
class Template:
    id: str
    kind: TemplateKind
    title: str
    body: str
    severity: Severity | None = None
    event: str | None = None  # a prefix of the event code

    def matches(self, kind: TemplateKind, severity: Severity, event_type: str) -> bool:
        return (
            self.kind is kind
            and (self.severity is None or self.severity is severity)
            and (self.event is None or event_type.startswith(self.event))
        )

    @property
    def specificity(self) -> tuple[int, int]:
        """A longer event prefix beats a severity; both beat the fallback."""
        return (len(self.event or ""), int(self.severity is not None))


@dataclass(frozen=True)
class TemplateSet:
    templates: tuple[Template, ...]
    event_names: Mapping[str, str]
    drill_opening: str = "现在进行应急广播演练。"
    drill_closing: str = "演练结束。"

    def select(self, draft: MessageDraft) -> Template:
        kind = TemplateKind.of(draft.msg_type)
        candidates = [t for t in self.templates if t.matches(kind, draft.severity, draft.event_type)]
        # load_templates guarantees a fallback per kind, so candidates is never empty.
        return max(candidates, key=lambda t: t.specificity)

    def fields(self, draft: MessageDraft, *, county_name: str) -> dict[str, str]:
        """The placeholder values for one message (documented in FIELDS and config/templates.toml)."""
        content = draft.primary
        known_colour = draft.severity is not Severity.UNKNOWN
        return {
            "county": county_name,
            "sender": draft.sender_name,
            "event_name": event_name(draft.event_type, self.event_names),
            "event_code": draft.event_type,
            "colour": draft.severity.colour_zh if known_colour else "",
            "grade": draft.severity.grade_zh if known_colour else "",
            "title": content.title,
            "text": content.text,
            "start": spoken_time(draft.start_at),
            "end": spoken_time(draft.end_at),
        }

    def render(self, draft: MessageDraft, *, county_name: str) -> SpokenText:
        template = self.select(draft)
        values = self.fields(draft, county_name=county_name)
        title = template.title.format_map(values)
        body = normalise_for_speech(template.body.format_map(values)).strip()
        if template.kind is TemplateKind.DRILL:
            if not body.startswith(self.drill_opening):
                body = self.drill_opening + body
            if not body.endswith(self.drill_closing):
                body = body + self.drill_closing
            if _DRILL_WORD not in title:
                title = _DRILL_TITLE_MARK + title
        return SpokenText(title=title, body=body, template_id=template.id)


def spoken_time(at: datetime) -> str:
    """A moment as a broadcaster says it, in Beijing time: 2026-11-22T02:30Z → 十一月二十二日十时三十分."""
    local = at.astimezone(BEIJING)
    written = f"{local.month}月{local.day}日{local.hour}时" + (f"{local.minute}分" if local.minute else "")
    return normalise_for_speech(written)


def event_name(code: str, names: Mapping[str, str]) -> str:
    """The Chinese name of an event code, falling back to its category (11B55 → 气象灾害) then 突发事件."""
    for candidate in (code, code[:3] + "00", code[:2] + "000", code[:1] + "0000"):
        if candidate in names:
            return names[candidate]
    return _GENERIC_EVENT_NAME


def load_event_names(path: Path | None = None) -> dict[str, str]:
    """Read config/event-types.tsv (header `code<TAB>name_zh`; blank lines and # comments allowed)."""
    path = path or DEFAULT_EVENT_TYPES_PATH
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as exc:
        raise TemplateError(
            TemplateErrorKind.INVALID_EVENT_TYPES,
            f"无法读取事件类型表（{exc.strerror}），请检查文件是否存在。",
            path=path,
        ) from exc
    names: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#") or (number == 1 and line.startswith("code")):
            continue
        code, sep, name = line.partition("\t")
        code, name = code.strip(), name.strip()
        if not sep or not name or not _EVENT_PREFIX.match(code) or len(code) != 5:
            raise TemplateError(
                TemplateErrorKind.INVALID_EVENT_TYPES,
                f"第 {number} 行格式错误：应为“5位事件代码<制表符>中文名称”，例如“11B03\t暴雨”。",
                path=path,
            )
        names[code] = name
    return names


def load_templates(path: Path | None = None, *, event_types_path: Path | None = None) -> TemplateSet:
    """Load and check the templates; raise TemplateError naming the template for any problem."""
    path = path or DEFAULT_TEMPLATES_PATH
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError as exc:
        raise TemplateError(
            TemplateErrorKind.FILE_NOT_FOUND,
            "找不到模板文件，请检查路径或从 config/templates.toml 复制一份。",
            path=path,
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise TemplateError(
            TemplateErrorKind.INVALID_TOML, f"TOML 语法错误（{exc}），请修正后重新加载。", path=path
        ) from exc
    names = load_event_names(event_types_path)
    unknown_sections = set(data) - {"drill", "template"}
    if unknown_sections:
        raise TemplateError(
            TemplateErrorKind.INVALID_ENTRY,
            f"未知的配置节 {sorted(unknown_sections)}；只允许 [drill] 和 [[template]]。",
            path=path,
        )
    opening, closing = _drill_frame(data.get("drill", {}), path)
    entries = data.get("template", [])
    if not isinstance(entries, list) or not entries:
        raise TemplateError(
            TemplateErrorKind.INVALID_ENTRY, "没有任何 [[template]]，请至少为每种类型写一个。", path=path
        )
    templates = tuple(_parse_template(entry, index, path, names) for index, entry in enumerate(entries))
    _check_set(templates, path)
    return TemplateSet(templates=templates, event_names=names, drill_opening=opening, drill_closing=closing)


def _drill_frame(section: Any, path: Path) -> tuple[str, str]:
    if not isinstance(section, dict):
        raise TemplateError(TemplateErrorKind.INVALID_DRILL_FRAME, "[drill] 必须是一个表。", path=path)
    frame: list[str] = []
    for key, default in (("opening", "现在进行应急广播演练。"), ("closing", "演练结束。")):
        value = section.get(key, default)
        if not isinstance(value, str) or _DRILL_WORD not in value:
            raise TemplateError(
                TemplateErrorKind.INVALID_DRILL_FRAME,
                f"[drill].{key} 必须是包含“{_DRILL_WORD}”的文字，以免演练被误认为真实预警。",
                path=path,
            )
        frame.append(normalise_for_speech(value).strip())
    return frame[0], frame[1]


def _parse_template(entry: Any, index: int, path: Path, names: Mapping[str, str]) -> Template:
    raw_id = entry.get("id") if isinstance(entry, dict) else None
    label = raw_id if isinstance(raw_id, str) and raw_id else f"#{index + 1}"  # the n-th [[template]]

    def fail(kind: TemplateErrorKind, message: str) -> TemplateError:
        return TemplateError(kind, message, path=path, template_id=label)

    if not isinstance(entry, dict):
        raise fail(TemplateErrorKind.INVALID_ENTRY, "每个 [[template]] 必须是一个表。")
    unknown = set(entry) - _TEMPLATE_KEYS
    if unknown:
        raise fail(
            TemplateErrorKind.INVALID_ENTRY,
            f"未知的键 {sorted(unknown)}；允许的键：{sorted(_TEMPLATE_KEYS)}。",
        )
    for key in ("id", "kind", "title", "body"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise fail(TemplateErrorKind.INVALID_ENTRY, f"缺少键 {key!r}（须为非空字符串）。")
    try:
        kind = TemplateKind(entry["kind"])
    except ValueError:
        raise fail(
            TemplateErrorKind.INVALID_ENTRY,
            f"kind 应为 {[k.value for k in TemplateKind]} 之一，而不是 {entry['kind']!r}。",
        ) from None
    severity: Severity | None = None
    if "severity" in entry:
        raw = entry["severity"]
        if not isinstance(raw, str) or raw.upper() not in Severity.__members__:
            allowed = [s.name.lower() for s in Severity]
            raise fail(TemplateErrorKind.INVALID_ENTRY, f"severity 应为 {allowed} 之一，而不是 {raw!r}。")
        severity = Severity[raw.upper()]
    event: str | None = None
    if "event" in entry:
        raw = entry["event"]
        if (
            not isinstance(raw, str)
            or not _EVENT_PREFIX.match(raw)
            or not any(c.startswith(raw) for c in names)
        ):
            raise fail(
                TemplateErrorKind.INVALID_ENTRY,
                f"event {raw!r} 不是 event-types.tsv 中任何事件代码的前缀，"
                "例如应写 “11B03”（暴雨）或 “11C”。",
            )
        event = raw
    for key in ("title", "body"):
        _check_placeholders(entry[key], key, fail)
    return Template(
        id=entry["id"], kind=kind, title=entry["title"], body=entry["body"], severity=severity, event=event
    )


def _check_placeholders(text: str, key: str, fail: Callable[[TemplateErrorKind, str], TemplateError]) -> None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise fail(
            TemplateErrorKind.INVALID_PLACEHOLDER,
            f"{key} 的花括号写法有误（{exc}）；字面花括号请写成 {{{{ 和 }}}}。",
        ) from None
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field not in FIELDS:
            if field.isidentifier():
                raise fail(
                    TemplateErrorKind.UNKNOWN_PLACEHOLDER,
                    f"{key} 使用了未知占位符 {{{field}}}；可用的占位符：{_FIELD_LIST}。",
                )
            raise fail(
                TemplateErrorKind.INVALID_PLACEHOLDER,
                f"{key} 中的占位符 {{{field}}} 无效：只能写占位符名称，如 {{county}}。",
            )
        if spec or conversion:
            raise fail(
                TemplateErrorKind.INVALID_PLACEHOLDER,
                f"{key} 中的占位符 {{{field}}} 不能带格式说明或转换（如 :>5 或 !r），请只写 {{{field}}}。",
            )


def _check_set(templates: tuple[Template, ...], path: Path) -> None:
    seen_ids: set[str] = set()
    seen_matches: dict[tuple[TemplateKind, Severity | None, str | None], str] = {}
    for t in templates:
        if t.id in seen_ids:
            raise TemplateError(
                TemplateErrorKind.DUPLICATE_ID,
                "模板 id 重复，请给每个模板一个唯一的 id。",
                path=path,
                template_id=t.id,
            )
        seen_ids.add(t.id)
        match = (t.kind, t.severity, t.event)
        if match in seen_matches:
            raise TemplateError(
                TemplateErrorKind.DUPLICATE_MATCH,
                f"与模板 {seen_matches[match]!r} 的适用条件（kind、severity、event）完全相同，"
                "请删除或修改其中一个。",
                path=path,
                template_id=t.id,
            )
        seen_matches[match] = t.id
    for kind in TemplateKind:
        if not any(t.kind is kind and t.severity is None and t.event is None for t in templates):
            raise TemplateError(
                TemplateErrorKind.NO_FALLBACK,
                f"缺少 kind = {kind.value!r} 的通用模板（不带 severity 和 event），否则部分消息无模板可用。",
                path=path,
                template_id=kind.value,
            )
