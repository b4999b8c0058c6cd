"""Adapter sections are checked against their schema before an adapter is built: a typo, a wrong type
or a missing required key stops that adapter with a message naming the key; the others run. Each
family declares its schema next to its adapter; the registry collects them from the installed ones."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from adapters.registry import AdapterRegistry, AdapterState, check_section, collect_schemas, discover
from broadcast.clock import ManualClock
from broadcast.settings import load_settings

SCHEMAS = collect_schemas(discover())


def check(name: str, section: dict[str, Any]) -> list[str]:
    return check_section(name, section, SCHEMAS.get(name))


def test_every_built_in_family_declares_its_schema() -> None:
    assert set(SCHEMAS) >= {"ip_speaker", "front_end", "fm", "cable_tv"}


def test_shipped_configuration_is_valid() -> None:
    for name, section in load_settings().adapters.items():
        assert check(name, section) == [], name


def test_problems_name_the_key() -> None:
    assert "portt" in check("ip_speaker", {"portt": 9300})[0]
    assert "ack_timeout_s" in check("ip_speaker", {"ack_timeout_s": "3"})[0]
    missing = check("fm", {"url": "socket://127.0.0.1:1"})
    assert len(missing) == 1 and "resource_code" in missing[0]
    assert check("somebody_elses_adapter", {"anything": 1}) == []


def test_registry_stops_only_the_misconfigured_adapter() -> None:
    built: list[str] = []

    def factory(name: str) -> Any:
        def make(cfg: Any, clock: Any) -> Any:
            built.append(name)
            raise RuntimeError("not needed in this test")

        return make

    reg = AdapterRegistry(
        ManualClock(datetime(2026, 11, 27, tzinfo=UTC)), {"fm": factory("fm"), "ip_speaker": factory("ip")}
    )
    reg.build({"fm": {"url": "/dev/ttyUSB0"}, "ip_speaker": {"port": 9300}})
    states = {e.name: e for e in reg.entries()}
    assert states["fm"].state is AdapterState.STOPPED and "resource_code" in states["fm"].error
    assert built == ["ip"]  # fm was never built; ip_speaker was (and failed for its own reason)


def test_commented_examples_in_the_shipped_configuration_are_valid() -> None:
    import tomllib

    from broadcast.settings import DEFAULT_CONFIG

    text = DEFAULT_CONFIG.read_text(encoding="utf-8")
    block = text[text.index("# [adapters.front_end]") : text.index("[sim]")]
    examples = tomllib.loads(
        "\n".join(line.removeprefix("#").removeprefix(" ") for line in block.splitlines())
    )
    assert set(examples["adapters"]) == {"front_end", "fm", "cable_tv"}
    for name, section in examples["adapters"].items():
        assert check(name, section) == [], name
