"""`ebc cap check`: one JSON line per file, exit codes, the normalised message JSON, and the corpus."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from broadcast.clock import ManualClock
from broadcast.sources.cap.check import draft_to_json, main
from broadcast.sources.cap.convert import to_draft
from broadcast.sources.cap.parse import parse_cap
from tests.sources.cap_doc import CORPUS, EXAMPLES

BJ = timezone(timedelta(hours=8))
NOW = "2025-07-12T05:00:00+08:00"
MESSAGE_KEYS = {
    "msg_type", "msg_type_name", "is_drill", "event_type", "severity", "severity_colour", "priority",
    "sender_name", "sender_code", "sent_at", "start_at", "end_at", "area_codes", "contents", "source",
    "related_ebm_id", "warnings", "cap",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, Any]]]:
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines()]


def test_ok_file_exit_0_and_shape(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(EXAMPLES / "cap-rainstorm-red-anning.xml")
    code, lines = run(capsys, path, "--now", NOW)
    assert code == 0
    assert len(lines) == 1
    (line,) = lines
    assert set(line) == {"file", "ok", "messages"}
    assert line["file"] == path and line["ok"] is True
    (m,) = line["messages"]
    assert set(m) == MESSAGE_KEYS
    assert (m["msg_type"], m["msg_type_name"], m["is_drill"]) == (1, "actual", False)
    assert (m["event_type"], m["severity"], m["severity_colour"]) == ("11B03", 1, "红色")
    assert m["area_codes"] == ["530181000000"]
    assert m["contents"][0]["language"] == "zho"
    assert m["contents"][0]["title"] == "安宁市气象台发布暴雨红色预警[Ⅰ级/特别严重]"
    assert m["source"] == {
        "kind": "cap",
        "sender": "Anning_Meteorological_Observatory",
        "identifier": "53018141600000_20250712043000",
        "sent": "2025-07-12T04:30:00+08:00",
    }
    assert datetime.fromisoformat(m["start_at"]) == datetime(2025, 7, 12, 4, 30, tzinfo=BJ)
    assert m["cap"]["expired"] is False and m["cap"]["references"] == []


def test_mixed_files_exit_1_one_line_each(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.xml")
    files = [str(CORPUS / "cma-gale-blue.xml"), str(CORPUS / "xxe-file.xml"), missing]
    code, lines = run(capsys, *files, "--now", NOW)
    assert code == 1
    assert [line["file"] for line in lines] == files
    assert [line["ok"] for line in lines] == [True, False, False]
    assert lines[1]["kind"] == "forbidden_dtd" and "DOCTYPE" in lines[1]["error"]
    assert lines[2]["kind"] == "unreadable" and "无法读取文件" in lines[2]["error"]
    assert set(lines[1]) == {"file", "ok", "kind", "error"}


def test_error_names_identifier(capsys: pytest.CaptureFixture[str]) -> None:
    code, (line,) = run(capsys, str(CORPUS / "system-status.xml"))
    assert code == 1
    assert "53018141600000_20250712043000" in line["error"]


def test_expiry_uses_now_option_and_clock(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(CORPUS / "cma-thunder-yellow.xml")  # expires 2025-07-12T21:00+08:00
    _, (line,) = run(capsys, path, "--now", "2025-07-12T22:00:00+08:00")
    assert line["ok"] is True and line["messages"][0]["cap"]["expired"] is True
    assert main([path], clock=ManualClock(datetime(2025, 7, 12, 16, 0, tzinfo=BJ))) == 0
    assert json.loads(capsys.readouterr().out)["messages"][0]["cap"]["expired"] is False


def test_oversized_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    big = tmp_path / "big.xml"
    big.write_bytes((CORPUS / "cma-gale-blue.xml").read_bytes() + b"<!--" + b"x" * (300 * 1024) + b"-->")
    code, (line,) = run(capsys, str(big))
    assert code == 1 and line["kind"] == "too_large"
    assert main([str(big), "--max-bytes", str(400 * 1024)]) == 0
    capsys.readouterr()


def test_draft_to_json_is_json_serialisable_and_round_trips_times() -> None:
    data = (CORPUS / "update-upgrade.xml").read_bytes()
    draft = to_draft(parse_cap(data), now=datetime(2025, 7, 12, 6, 0, tzinfo=BJ)).draft
    out = json.loads(json.dumps(draft_to_json(draft), ensure_ascii=False))
    assert "cap" not in out
    assert datetime.fromisoformat(out["end_at"]) == draft.end_at
    assert out["related_ebm_id"] is None
    assert out["priority"] == int(draft.priority)


# The whole corpus: what each file must give.
CORPUS_EXPECTED: dict[str, tuple[str, ...]] = {
    "cma-rainstorm-red.xml": ("ok", "actual", "11B03", "1"),
    "cma-rainstorm-street.xml": ("ok", "actual", "11B03", "1"),
    "cma-thunder-yellow.xml": ("ok", "actual", "11B14", "3"),
    "cma-typhoon-orange.xml": ("ok", "actual", "11B01", "2"),
    "cma-gale-blue.xml": ("ok", "actual", "11B06", "4"),
    "cma-heat-orange.xml": ("ok", "actual", "11B09", "2"),
    "cma-fog-yellow.xml": ("ok", "actual", "11B17", "3"),
    "cap11-gale.xml": ("ok", "actual", "11B06", "4"),
    "bom-utf8.xml": ("ok", "actual", "11B14", "3"),
    "gb18030.xml": ("ok", "actual", "11B03", "1"),
    "gbk-declared-gb2312.xml": ("ok", "actual", "11B09", "2"),
    "no-namespace.xml": ("ok", "actual", "11B17", "3"),
    "update-upgrade.xml": ("ok", "actual", "11B03", "1"),
    "cancel.xml": ("ok", "cancel", "11B03", "1"),
    "exercise.xml": ("ok", "platform_drill", "11B14", "3"),
    "test-status.xml": ("ok", "platform_drill", "11B06", "4"),
    "polygon-circle.xml": ("ok", "actual", "11B14", "3"),
    "headline-colour-wins.xml": ("ok", "actual", "11B03", "1"),
    "non-cpeas-geocode.xml": ("ok", "actual", "11B06", "4"),
    "system-status.xml": ("error", "not_broadcastable"),
    "wrong-namespace.xml": ("error", "wrong_namespace"),
    "bad-polygon-open.xml": ("error", "bad_polygon"),
    "bad-polygon-swapped.xml": ("error", "bad_polygon"),
    "missing-identifier.xml": ("error", "missing_field"),
    "billion-laughs.xml": ("error", "forbidden_dtd"),
    "xxe-file.xml": ("error", "forbidden_dtd"),
    "deeply-nested.xml": ("error", "too_deep"),
}


def test_corpus_is_fully_covered() -> None:
    assert sorted(p.name for p in CORPUS.glob("*.xml")) == sorted(CORPUS_EXPECTED)


@pytest.mark.parametrize("name", sorted(CORPUS_EXPECTED))
def test_corpus(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    expected = CORPUS_EXPECTED[name]
    code, (line,) = run(capsys, str(CORPUS / name), "--now", NOW)
    if expected[0] == "ok":
        assert code == 0, line
        (m,) = line["messages"]
        assert (m["msg_type_name"], m["event_type"], str(m["severity"])) == expected[1:]
    else:
        assert code == 1
        assert line["kind"] == expected[1]
        assert line["error"]
