"""`ebc`: the command line of the county controller.

    ebc run                      run the controller (web/API, adapters) until interrupted
    ebc terminals [--area CODE]  list terminals with their last known link state
    ebc cap check FILE...        validate CAP documents, one JSON line per file
    ebc ebd inspect FILE...      inspect EBD packets (EBDB/EBDS xml or EBDT tar)
    ebc audio render --text …    render a programme to an audio file
    ebc report broadcast ID | health --month YYYY-MM | drill ID   reports (HTML, CSV, JSON)
    ebc audit verify | tail      check the hash-chained audit ledger

Owns argument parsing and process setup (logging, signals); the work is done by the modules it calls.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from broadcast.settings import Settings, SettingsError, load_settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, dict[str, object]] = {}
    if getattr(args, "port", None) is not None:
        overrides.setdefault("server", {})["port"] = args.port
    if getattr(args, "database", None):
        overrides.setdefault("database", {})["url"] = args.database
    return load_settings(Path(args.config) if args.config else None, overrides)


async def wait_for_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def _run(settings: Settings) -> None:
    from broadcast.app.controller import Controller

    controller = await Controller.create(settings)
    await controller.start()
    print(
        f"{controller.inventory.name}应急广播平台 running: http://{settings.host}:{controller.web_port}/  "
        f"({len(controller.inventory.terminals)} terminals configured; Ctrl-C to stop)",
        flush=True,
    )
    if controller.first_admin_password:
        print(
            f"First start: account 'admin' created with one-time password {controller.first_admin_password} "
            "(shown only now; you must change it at first login).",
            flush=True,
        )
    try:
        await wait_for_signal()
    finally:
        await controller.close()


async def _terminals(settings: Settings, area: str | None, as_json: bool) -> int:
    from broadcast.store.db import make_engine, prepare_schema
    from broadcast.store.inventory import list_terminals
    from terminals.inventory import load_inventory
    from terminals.inventory_model import UnknownAreaError

    inv = load_inventory(settings.inventory_path)
    try:
        refs = inv.resolve([area]) if area else inv.terminals
    except UnknownAreaError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        await prepare_schema(engine)
        state = {r["resource_code"]: r for r in await list_terminals(engine, [t.resource_code for t in refs])}
    finally:
        await engine.dispose()
    rows = []
    for t in refs:
        db = state.get(t.resource_code)
        rows.append(
            {
                "resource_code": t.resource_code,
                "kind": str(t.kind),
                "area_code": t.area_code,
                "name": t.name,
                "physical_address": t.physical_address,
                "link_state": db["link_state"] if db else "unknown",
                "last_seen": db["last_seen"].isoformat() if db and db["last_seen"] else None,
            }
        )
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
    else:
        for r in rows:
            print(f"{r['resource_code']}  {r['kind']:<9} {r['area_code']}  {r['link_state']:<12} {r['name']}")
        print(f"# {len(rows)} terminals", file=sys.stderr)
    return 0


def _delegate(module: str, argv: Sequence[str]) -> int:
    mod = importlib.import_module(module)
    rc: int = mod.main(list(argv))
    return rc


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Sub-tools with their own argument parsers.
    if argv[:2] == ["cap", "check"]:
        return _delegate("broadcast.sources.cap.check", argv[2:])
    if argv[:2] == ["ebd", "inspect"]:
        return _delegate("broadcast.interconnect.ebd.inspect", argv[2:])
    if argv[:2] == ["audio", "render"]:
        return _delegate("broadcast.audio.cli", argv[2:])
    if argv[:1] == ["report"]:
        return _delegate("broadcast.reports.cli", argv[1:])
    if argv[:1] == ["audit"]:
        return _delegate("broadcast.security.cli", argv[1:])

    parser = argparse.ArgumentParser(prog="ebc", description="县级应急广播平台 controller")
    parser.add_argument("--config", help="TOML file merged over config/ebc.toml")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="run the controller")
    p_run.add_argument("--port", type=int, help="web/API port (default from config: 8080)")
    p_run.add_argument("--database", help="database URL (default: SQLite file under var/)")
    p_term = sub.add_parser("terminals", help="list terminals")
    p_term.add_argument("--area", help="6-, 9- or 12-digit area code (zeros are wildcards)")
    p_term.add_argument("--json", action="store_true", help="one JSON object per line")
    sub.add_parser("cap", help="`ebc cap check FILE...`")
    sub.add_parser("ebd", help="`ebc ebd inspect FILE...`")
    sub.add_parser("audio", help="`ebc audio render --text ... --out FILE`")
    sub.add_parser("report", help="`ebc report broadcast ID | health --month 2026-11`")
    sub.add_parser("audit", help="`ebc audit verify`")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"ebc: {exc}", file=sys.stderr)
        return 2
    if args.cmd == "run":
        asyncio.run(_run(settings))
        return 0
    if args.cmd == "terminals":
        return asyncio.run(_terminals(settings, args.area, args.json))
    parser.print_help()
    return 2


if __name__ == "__main__":
    sys.exit(main())
