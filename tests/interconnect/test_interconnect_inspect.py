"""`ebc ebd inspect`: one JSON line per file, exit codes."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

from ebd_samples import BODIES, EBD_ID, EBM_ID, make_ebd

from broadcast.clock import ManualClock
from broadcast.interconnect.ebd.inspect import main
from broadcast.interconnect.ebd.model import EBDType
from broadcast.interconnect.ebd.package import body_name, pack_ebdt, signature_name, tar_name
from broadcast.interconnect.ebd.signing import Signer, generate_private_key
from broadcast.interconnect.ebd.xml_build import build_ebd

DATA = Path(__file__).parent.parent / "data" / "ebd"


def _run(paths: list[Path | str]) -> tuple[int, list[dict[str, object]]]:
    out = io.StringIO()
    code = main([str(p) for p in paths], out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_inspect_all_three_kinds(tmp_path: Path) -> None:
    ebdb = build_ebd(make_ebd(BODIES[EBDType.EBM]))
    signer = Signer(generate_private_key(), "42", clock=ManualClock(datetime(2026, 11, 5, tzinfo=UTC)))
    sig = signer.sign_xml(ebdb, EBD_ID)
    (tmp_path / body_name(EBD_ID)).write_bytes(ebdb)
    (tmp_path / signature_name(EBD_ID)).write_bytes(sig)
    (tmp_path / tar_name(EBD_ID)).write_bytes(pack_ebdt(EBD_ID, ebdb, sig, {"a.mp3": b"123"}))
    code, rows = _run([tmp_path / body_name(EBD_ID), tmp_path / signature_name(EBD_ID),
                       tmp_path / tar_name(EBD_ID), DATA / "lishui_2016_ebm.xml"])
    assert code == 0 and len(rows) == 4 and all(r["ok"] for r in rows)
    body, signature, package, lishui = rows
    assert body["kind"] == "EBDB" and body["ebd_type"] == "EBM" and body["ebd_id"] == EBD_ID
    assert body["ebm_id"] == EBM_ID and body["time"] == "2026-11-05 09:30:00" and body["legacy_ids"] is False
    assert signature["kind"] == "EBDS" and signature["cert_sn"] == "000000000042"
    assert signature["signature_length"] == 74
    assert package["kind"] == "EBDT" and package["resources"] == {"EBDR_a.mp3": 3}
    assert isinstance(package["signature"], dict) and package["signature"]["cert_sn"] == "000000000042"
    assert lishui["legacy_ids"] is True


def test_inspect_failures_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "EBDB_bad.xml"
    bad.write_bytes(b"<EBD><EBDID>1")
    good = tmp_path / "ok.xml"
    good.write_bytes(build_ebd(make_ebd(BODIES[EBDType.CONNECTION_CHECK])))
    code, rows = _run([good, bad, tmp_path / "missing.tar"])
    assert code == 1
    assert rows[0]["ok"] is True and rows[0]["ebd_type"] == "ConnectionCheck"
    assert rows[1] == {"file": str(bad), "ok": False, "error": rows[1]["error"], "result_code": 2}
    assert isinstance(rows[1]["error"], str) and "请" in rows[1]["error"]
    assert rows[2]["ok"] is False and rows[2]["file"] == str(tmp_path / "missing.tar")


def test_inspect_usage() -> None:
    assert main([], out=io.StringIO()) == 2
