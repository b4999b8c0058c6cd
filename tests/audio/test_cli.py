"""``ebc audio render`` renders offline into the given cache and prints JSON; a second run is cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from broadcast.audio.cli import main


def test_render_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--title", "测试", "--text", "安宁县应急广播测试。", "--cache", str(tmp_path / "c"),
            "--out", str(tmp_path / "out.mp3")]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["engine"] == "espeak-ng" and not first["cached"]
    assert (tmp_path / "out.mp3").read_bytes() == Path(first["path"]).read_bytes()
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cached"] and second["digest"] == first["digest"]
    assert main(["--text", " ", "--cache", str(tmp_path / "c")]) == 1
    assert "制作失败" in capsys.readouterr().err
