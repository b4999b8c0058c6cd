"""`ebc audit …`: check and read the audit ledger from the command line.

    ebc audit verify [--database URL] [--anchor SEQ:HASH]   exit 0 intact, 1 tampered, 2 cannot check
    ebc audit tail   [--database URL] [-n N] [--json]
    ebc audit head   [--database URL]                       print SEQ:HASH to keep outside the database

``main(argv)`` takes the arguments after "audit" (a leading "audit" is tolerated). Owns argument parsing
and printing; must never modify the ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import BEIJING
from broadcast.security import audit
from broadcast.store.db import make_engine


def _default_url() -> str:
    from broadcast.settings import load_settings

    return load_settings().database_url


async def _has_ledger(engine: AsyncEngine) -> bool:
    async with engine.connect() as conn:
        return bool(await conn.run_sync(lambda c: sa_inspect(c).has_table(audit.audit_ledger.name)))


def _parse_anchor(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    seq, _, h = text.partition(":")
    if not seq.isdigit() or len(h) != 64:
        raise ValueError(f"anchor must be SEQ:HASH (64 hex digits), got {text!r}")
    return int(seq), h


async def _verify(url: str, anchor: tuple[int, str] | None, as_json: bool) -> int:
    engine = make_engine(url)
    try:
        if not await _has_ledger(engine):
            print(f"数据库中没有审计日志表 / no audit ledger in {url}", file=sys.stderr)
            return 2
        report = await audit.verify(engine, anchor=anchor)
    finally:
        await engine.dispose()
    if as_json:
        print(json.dumps(report.as_json(), ensure_ascii=False, indent=2))
    elif report.ok:
        print(
            f"审计日志完整：共 {report.rows_checked} 条，链尾序号 {report.head_seq}，哈希 {report.head_hash}"
        )
        print(
            f"audit ledger intact: {report.rows_checked} entries, head seq {report.head_seq}, hash {report.head_hash}"
        )
    else:
        print(f"审计日志被篡改：发现 {len(report.findings)} 处问题（共检查 {report.rows_checked} 条）")
        print(f"audit ledger TAMPERED: {len(report.findings)} finding(s) in {report.rows_checked} entries")
        for f in report.findings:
            print(f"  - [{f.kind.value}] {f.message_zh()}")
            print(f"    {f.message_en()}")
    return 0 if report.ok else 1


async def _tail(url: str, n: int, as_json: bool) -> int:
    engine = make_engine(url)
    try:
        if not await _has_ledger(engine):
            print(f"数据库中没有审计日志表 / no audit ledger in {url}", file=sys.stderr)
            return 2
        entries = await audit.tail(engine, n)
    finally:
        await engine.dispose()
    for e in entries:
        if as_json:
            print(json.dumps(e.as_json(), ensure_ascii=False))
        else:
            at = e.at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")
            print(f"{e.seq:>6}  {at}  {e.action:<18} {e.actor:<16} {e.remote:<15} {e.target}  {e.detail}")
    return 0


async def _head(url: str) -> int:
    engine = make_engine(url)
    try:
        h = await audit.head(engine) if await _has_ledger(engine) else None
    finally:
        await engine.dispose()
    if h is None:
        print("审计日志为空 / audit ledger empty", file=sys.stderr)
        return 2
    print(f"{h[0]}:{h[1]}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    if args_in[:1] == ["audit"]:
        args_in = args_in[1:]
    parser = argparse.ArgumentParser(prog="ebc audit", description="审计日志 / audit ledger")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_verify = sub.add_parser("verify", help="recompute the hash chain; exit 1 when tampered")
    p_verify.add_argument("--anchor", help="SEQ:HASH printed earlier by `ebc audit head`")
    p_verify.add_argument("--json", action="store_true")
    p_tail = sub.add_parser("tail", help="print the newest entries")
    p_tail.add_argument("-n", type=int, default=20)
    p_tail.add_argument("--json", action="store_true")
    p_head = sub.add_parser("head", help="print SEQ:HASH of the newest entry")
    for p in (p_verify, p_tail, p_head):
        p.add_argument("--database", help="database URL (default: from the configuration)")
    args = parser.parse_args(args_in)
    url = args.database or _default_url()
    if args.cmd == "verify":
        try:
            anchor = _parse_anchor(args.anchor)
        except ValueError as exc:
            print(f"ebc audit: {exc}", file=sys.stderr)
            return 2
        return asyncio.run(_verify(url, anchor, args.json))
    if args.cmd == "tail":
        return asyncio.run(_tail(url, args.n, args.json))
    return asyncio.run(_head(url))


if __name__ == "__main__":
    sys.exit(main())
