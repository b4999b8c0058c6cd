"""The hash-chained audit ledger: appends under concurrency, and verify naming edited, deleted,
reordered and inserted rows; the `ebc audit` command line."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.clock import ManualClock
from broadcast.security import audit
from broadcast.security.audit import AuditAction, AuditLedger, FindingKind
from broadcast.security.cli import main as audit_main
from broadcast.store.db import make_engine, prepare_schema


async def _fill(engine: AsyncEngine, clock: ManualClock, n: int = 6) -> list[audit.AuditEntry]:
    ledger = AuditLedger(engine, clock)
    out = []
    for i in range(n):
        clock.advance(1.5)
        out.append(await ledger.append(AuditAction.MESSAGE_APPROVED, actor=f"user{i}", remote="10.0.0.9",
                                       target=f"EBM-{i}", detail={"note": f"第{i}条", "n": i}))
    return out


async def _sql(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        for s in statements:
            await conn.execute(text(s))


async def test_intact_chain_verifies(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    assert [e.seq for e in entries] == [1, 2, 3, 4, 5, 6]
    assert entries[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    report = await audit.verify(engine)
    assert report.ok and report.rows_checked == 6 and report.head_hash == entries[-1].hash
    tail = await audit.tail(engine, 2)
    assert [e.seq for e in tail] == [5, 6] and tail[1].as_json()["detail"] == {"note": "第5条", "n": 5}


async def test_unknown_action_refused(engine: AsyncEngine, clock: ManualClock) -> None:
    with pytest.raises(ValueError):
        await AuditLedger(engine, clock).append("made_up", actor="x")


async def test_edited_row_is_named(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    await _sql(engine, "UPDATE audit_ledger SET actor = 'mallory' WHERE seq = 3")
    report = await audit.verify(engine)
    assert not report.ok
    assert [(f.kind, f.seq, f.row_id) for f in report.findings] == [(FindingKind.EDITED, 3, entries[2].id)]
    f = report.findings[0]
    assert f.found == entries[2].hash and f.expected != f.found
    assert "序号 3" in f.message_zh() and "seq 3" in f.message_en()


async def test_edited_detail_and_time_are_caught(engine: AsyncEngine, clock: ManualClock) -> None:
    await _fill(engine, clock)
    await _sql(engine, """UPDATE audit_ledger SET detail = '{"n": 1, "note": "x"}' WHERE seq = 2""")
    await _sql(engine, "UPDATE audit_ledger SET at = '2020-01-01 00:00:00.000000' WHERE seq = 5")
    report = await audit.verify(engine)
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.EDITED, 2), (FindingKind.EDITED, 5)]


async def test_rewritten_row_with_recomputed_hash_breaks_the_link(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    e = entries[2]
    forged = audit.compute_hash(e.prev_hash, seq=e.seq, at=e.at, actor="mallory", remote=e.remote,
                                action=e.action, target=e.target, detail=e.detail)
    await _sql(engine, f"UPDATE audit_ledger SET actor = 'mallory', hash = '{forged}' WHERE seq = 3")
    report = await audit.verify(engine)
    assert [(f.kind, f.seq, f.row_id) for f in report.findings] == [(FindingKind.MISSING, 4, entries[3].id)]
    assert report.findings[0].expected == e.hash


async def test_deleted_row_is_named(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    await _sql(engine, "DELETE FROM audit_ledger WHERE seq = 3")
    report = await audit.verify(engine)
    assert [(f.kind, f.seq, f.row_id) for f in report.findings] == [(FindingKind.MISSING, 4, entries[3].id)]
    assert report.findings[0].expected == entries[2].hash  # the link that points at the deleted entry


async def test_deleted_first_row_is_named(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    await _sql(engine, "DELETE FROM audit_ledger WHERE seq = 1")
    report = await audit.verify(engine)
    assert [(f.kind, f.seq, f.row_id) for f in report.findings] == [(FindingKind.MISSING, 2, entries[1].id)]


async def test_reordered_pair_is_named(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    await _sql(
        engine,
        "UPDATE audit_ledger SET seq = -1 WHERE seq = 3",
        "UPDATE audit_ledger SET seq = 3 WHERE seq = 4",
        "UPDATE audit_ledger SET seq = 4 WHERE seq = -1",
    )
    report = await audit.verify(engine)
    got = [(f.kind, f.row_id, f.expected, f.found) for f in report.findings]
    assert got == [
        (FindingKind.REORDERED, entries[3].id, "4", "3"),
        (FindingKind.REORDERED, entries[2].id, "3", "4"),
    ]
    assert "位置被调换" in report.findings[0].message_zh()


async def test_deleted_then_relinked_gap_is_caught(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    e = entries[3]
    relinked = audit.compute_hash(entries[1].hash, seq=e.seq, at=e.at, actor=e.actor, remote=e.remote,
                                  action=e.action, target=e.target, detail=e.detail)
    await _sql(engine, "DELETE FROM audit_ledger WHERE seq = 3",
               f"UPDATE audit_ledger SET prev_hash = '{entries[1].hash}', hash = '{relinked}' WHERE seq = 4")
    report = await audit.verify(engine)
    kinds = {(f.kind, f.seq) for f in report.findings}
    assert (FindingKind.MISSING, 4) in kinds  # the sequence gap the re-link could not hide
    assert (FindingKind.MISSING, 5) in kinds  # row 5 still links to the old row 4


async def test_inserted_row_forks_the_chain(engine: AsyncEngine, clock: ManualClock) -> None:
    entries = await _fill(engine, clock)
    prev = entries[1]
    at = entries[2].at
    forged = audit.compute_hash(prev.hash, seq=100, at=at, actor="mallory", remote="", action="login",
                                target="", detail="{}")
    await _sql(engine, "INSERT INTO audit_ledger (seq, at, actor, remote, action, target, detail, prev_hash, hash) "
                       f"VALUES (100, '{at.replace(tzinfo=None).isoformat(sep=' ')}', 'mallory', '', 'login', '', "
                       f"'{{}}', '{prev.hash}', '{forged}')")
    report = await audit.verify(engine)
    assert any(f.kind is FindingKind.FORKED and f.seq == 100 for f in report.findings)


async def test_truncated_tail_needs_the_anchor(engine: AsyncEngine, clock: ManualClock) -> None:
    await _fill(engine, clock)
    anchor = await audit.head(engine)
    assert anchor is not None and anchor[0] == 6
    await _sql(engine, "DELETE FROM audit_ledger WHERE seq = 6")
    assert (await audit.verify(engine)).ok  # a chain alone cannot see a cut tail
    report = await audit.verify(engine, anchor=anchor)
    assert [(f.kind, f.seq) for f in report.findings] == [(FindingKind.TRUNCATED, 6)]


async def test_concurrent_appends_keep_one_chain(engine: AsyncEngine, clock: ManualClock) -> None:
    a, b = AuditLedger(engine, clock), AuditLedger(engine, clock)
    await asyncio.gather(*[
        (a if i % 2 else b).append(AuditAction.BROADCAST_STARTED, actor="dispatch", target=str(i))
        for i in range(40)
    ])
    entries = await audit.tail(engine, 100)
    assert [e.seq for e in entries] == list(range(1, 41))
    assert sorted(int(e.target) for e in entries) == list(range(40))
    assert (await audit.verify(engine)).ok


def _make_db(tmp_path: Path, tamper: str | None) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    async def setup() -> None:
        engine = make_engine(url)
        try:
            await prepare_schema(engine, feature_tables())
            await _fill(engine, ManualClock(datetime(2026, 11, 2, 8, 0, tzinfo=UTC)))
            if tamper:
                await _sql(engine, tamper)
        finally:
            await engine.dispose()

    asyncio.run(setup())
    return url


def test_cli_verify_intact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _make_db(tmp_path, None)
    assert audit_main(["audit", "verify", "--database", url]) == 0
    out = capsys.readouterr().out
    assert "审计日志完整" in out and "intact" in out and "6" in out


def test_cli_verify_tampered(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _make_db(tmp_path, "UPDATE audit_ledger SET target = 'EBM-X' WHERE seq = 2")
    assert audit_main(["verify", "--database", url]) == 1
    out = capsys.readouterr().out
    assert "篡改" in out and "TAMPERED" in out and "序号 2" in out and "seq 2" in out


def test_cli_tail_and_head(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = _make_db(tmp_path, None)
    assert audit_main(["tail", "-n", "3", "--database", url]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "message_approved" in lines[-1] and "EBM-5" in lines[-1]
    assert audit_main(["head", "--database", url]) == 0
    anchor = capsys.readouterr().out.strip()
    assert anchor.startswith("6:")
    assert audit_main(["verify", "--database", url, "--anchor", anchor]) == 0


def test_cli_no_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    assert audit_main(["verify", "--database", url]) == 2
    assert "no audit ledger" in capsys.readouterr().err


async def test_two_engines_race_on_one_database(tmp_path: Path, clock: ManualClock) -> None:
    """Two engines stand for two processes: the per-engine locks do not see each other, the UNIQUE seq does."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'race.db'}"
    e1, e2 = make_engine(url), make_engine(url)
    try:
        await prepare_schema(e1, feature_tables())
        l1, l2 = AuditLedger(e1, clock), AuditLedger(e2, clock)
        await asyncio.gather(*[(l1 if i % 2 else l2).append(AuditAction.LOGIN, actor=str(i)) for i in range(30)])
        entries = await audit.tail(e1, 100)
        assert [e.seq for e in entries] == list(range(1, 31))
        assert (await audit.verify(e1)).ok
    finally:
        await e1.dispose()
        await e2.dispose()
