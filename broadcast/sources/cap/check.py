"""`ebc cap check FILE…`: parse and convert CAP files, print one JSON line per file.

Owns the command's logic and the normalised message JSON (`draft_to_json`), which the web API reuses.
Never broadcasts, never writes files, never fetches a URI.

Output line per file: ``{"file": PATH, "ok": true, "messages": [MESSAGE]}`` or
``{"file": PATH, "ok": false, "kind": KIND, "error": "中文说明"}``; exit 0 when every file is ok, else 1.

Normalised message JSON (`draft_to_json`), all keys always present:
  msg_type        int, EBM MsgType (1 actual, 2 cancel, 3/4/5 drills)
  msg_type_name   str, enum name in lower case ("actual", "cancel", "platform_drill", …)
  is_drill        bool
  event_type      str, 5-character national event code, e.g. "11B03"
  severity        int, EBM Severity (0 unknown, 1 red … 4 blue, 15 test)
  severity_colour str, Chinese colour word ("红色" …)
  priority        int, broadcast priority (上级优先、应急优先)
  sender_name     str
  sender_code     str, 14-digit office code or ""
  sent_at, start_at, end_at   str, ISO 8601 with offset
  area_codes      list[str], 12-digit administrative area codes
  contents        list[{"language": "zho", "title": str, "text": str}], broadcast content first
  source          {"kind": "cap", "sender": str, "identifier": str, "sent": str}
  related_ebm_id  str | null
  warnings        list[str], Chinese, for the operator
`cap_check` adds per message a "cap" object: references [[sender, identifier, sent]], untargetable,
expired, event_guessed, event_matched, cap_status, cap_msg_type, polygons, circles, audio_resources.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from broadcast.clock import BEIJING, Clock, SystemClock
from broadcast.model import MessageDraft
from broadcast.sources.cap.convert import CapConversion, to_draft
from broadcast.sources.cap.errors import CapError
from broadcast.sources.cap.parse import parse_cap

MAX_BYTES = 256 * 1024


def draft_to_json(draft: MessageDraft) -> dict[str, Any]:
    """The normalised message JSON of a draft (field list in the module docstring)."""
    primary = draft.primary
    contents = [primary, *(c for c in draft.contents if c is not primary)]
    return {
        "msg_type": int(draft.msg_type),
        "msg_type_name": draft.msg_type.name.lower(),
        "is_drill": draft.msg_type.is_drill,
        "event_type": draft.event_type,
        "severity": int(draft.severity),
        "severity_colour": draft.severity.colour_zh,
        "priority": int(draft.priority),
        "sender_name": draft.sender_name,
        "sender_code": draft.sender_code,
        "sent_at": draft.sent_at.isoformat(),
        "start_at": draft.start_at.isoformat(),
        "end_at": draft.end_at.isoformat(),
        "area_codes": list(draft.area_codes),
        "contents": [{"language": c.language, "title": c.title, "text": c.text} for c in contents],
        "source": {
            "kind": str(draft.source.kind),
            "sender": draft.source.sender,
            "identifier": draft.source.identifier,
            "sent": draft.source.sent,
        },
        "related_ebm_id": draft.related_ebm_id,
        "warnings": list(draft.warnings),
    }


def conversion_to_json(conv: CapConversion) -> dict[str, Any]:
    """`draft_to_json` plus the CAP facts the policy layer needs, under "cap"."""
    out = draft_to_json(conv.draft)
    out["cap"] = {
        "references": [list(r) for r in conv.references],
        "untargetable": list(conv.untargetable),
        "expired": conv.expired,
        "event_guessed": conv.event.guessed,
        "event_matched": conv.event.matched,
        "cap_status": str(conv.cap_status),
        "cap_msg_type": str(conv.cap_msg_type),
        "polygons": [[list(p) for p in ring] for ring in conv.polygons],
        "circles": [list(c) for c in conv.circles],
        "audio_resources": [
            {"mime": r.mime, "uri": r.uri, "digest": r.digest, "size": r.size, "embedded": bool(r.deref_uri)}
            for r in conv.audio_resources
        ],
    }
    return out


def check_file(path: str, now: datetime, max_bytes: int = MAX_BYTES) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # one byte more than allowed is enough to refuse it
    except OSError as e:
        error = f"无法读取文件：{e.strerror}，请检查路径和权限"
        return {"file": path, "ok": False, "kind": "unreadable", "error": error}
    try:
        conv = to_draft(parse_cap(data, max_bytes=max_bytes), now=now)
    except CapError as e:
        error = f"{e.message}（identifier={e.identifier}）" if e.identifier else e.message
        return {"file": path, "ok": False, "kind": str(e.kind), "error": error}
    return {"file": path, "ok": True, "messages": [conversion_to_json(conv)]}


def main(argv: list[str], *, clock: Clock | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ebc cap check", description="检查 CAP 文件能否转换为应急广播消息")
    parser.add_argument("files", nargs="+", metavar="FILE")
    parser.add_argument("--now", help="判断是否过期所用的当前时间（ISO 8601，默认系统时间）")
    parser.add_argument("--max-bytes", type=int, default=MAX_BYTES)
    args = parser.parse_args(argv)
    now = (clock or SystemClock()).now()
    if args.now:
        now = datetime.fromisoformat(args.now)
        if now.tzinfo is None:
            now = now.replace(tzinfo=BEIJING)
    ok = True
    for path in args.files:
        result = check_file(str(Path(path)), now, args.max_bytes)
        ok = ok and bool(result["ok"])
        sys.stdout.write(json.dumps(result, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0 if ok else 1
