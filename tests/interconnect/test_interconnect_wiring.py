"""The `[interconnect]` config section, key files and the `keys` command (no network, no fleet)."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from broadcast.app.interconnect import (
    ConfigFault,
    InterconnectConfigError,
    attach_interconnect,
    interconnect_settings,
    load_keys,
)
from broadcast.interconnect.ebd import keys as keys_cli
from broadcast.interconnect.ebd.keys import (
    KeyFault,
    KeyFileError,
    read_private_key,
    read_public_key,
    write_key_pair,
)
from broadcast.interconnect.ebd.signing import public_key_to_hex

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "interconnect.example.toml"


def test_generate_writes_a_private_key_only_its_owner_can_read(tmp_path: Path) -> None:
    paths = write_key_pair(tmp_path / "keys", "county")
    assert stat.S_IMODE(paths.private_pem.stat().st_mode) == 0o600
    key = read_private_key(paths.private_pem)
    assert public_key_to_hex(key.public_key()) == paths.public_hex.read_text().strip()
    from_pem = read_public_key(str(paths.public_pem), tmp_path)
    from_hex = read_public_key(paths.public_hex.read_text(), tmp_path)  # inline hex
    assert public_key_to_hex(from_pem) == public_key_to_hex(from_hex) == paths.public_hex.read_text().strip()
    with pytest.raises(KeyFileError) as exists:
        write_key_pair(tmp_path / "keys", "county")
    assert exists.value.fault is KeyFault.EXISTS and "--force" in str(exists.value)
    assert write_key_pair(tmp_path / "keys", "county", force=True).private_pem == paths.private_pem


def test_keys_command_prints_public_key_but_never_the_private_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert keys_cli.main(["generate", "--out", str(tmp_path / "k"), "--name", "demo"]) == 0
    out = capsys.readouterr().out
    private = (tmp_path / "k" / "demo-sm2.pem").read_text()
    assert "PRIVATE" not in out and private.splitlines()[1] not in out
    hex_pub = (tmp_path / "k" / "demo-sm2.pub.hex").read_text().strip()
    assert hex_pub in out
    assert keys_cli.main(["public", str(tmp_path / "k" / "demo-sm2.pem")]) == 0
    assert capsys.readouterr().out.strip() == hex_pub
    assert keys_cli.main(["public", str(tmp_path / "missing.pem")]) == 2
    assert "不存在" in capsys.readouterr().err


def test_missing_or_bad_key_files_name_the_config_key(tmp_path: Path) -> None:
    base = {"cert_sn": "101"}
    with pytest.raises(InterconnectConfigError) as missing:
        load_keys({**base, "private_key": "nope.pem"}, tmp_path)
    assert missing.value.fault is ConfigFault.KEY and missing.value.key == "private_key"
    (tmp_path / "bad.pem").write_text("not a key")
    with pytest.raises(InterconnectConfigError) as bad:
        load_keys({**base, "private_key": "bad.pem"}, tmp_path)
    assert "内容无效" in str(bad.value)
    paths = write_key_pair(tmp_path, "county")
    with pytest.raises(InterconnectConfigError) as trusted:
        load_keys({**base, "private_key": str(paths.private_pem), "trusted": {"201": "absent.pub"}}, tmp_path)
    assert trusted.value.key == "trusted.201"
    with pytest.raises(InterconnectConfigError) as sn:
        load_keys({"cert_sn": "ABC", "private_key": str(paths.private_pem)}, tmp_path)
    assert sn.value.key == "cert_sn"
    keys = load_keys({**base, "private_key": str(paths.private_pem)}, tmp_path)
    assert keys.signer.cert_sn == "000000000101"


def test_example_section_parses_to_settings() -> None:
    section = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))["interconnect"]
    s = interconnect_settings(section, public_url="https://ebc.example.cn/")
    assert s.callback_url == "https://ebc.example.cn/ebd"
    assert [p.ebrid for p in s.peers] == ["25300000000000103010101"]
    assert s.timing.heartbeat_s == 30 and s.outbox.max_age_s == 86400 and s.outbox.backoff.initial_s == 5 and s.run_loops
    assert s.media_url is None and s.media_token is None
    assert interconnect_settings(section).callback_url is None
    with pytest.raises(InterconnectConfigError) as bad_peer:
        interconnect_settings({**section, "peers": [{"ebrid": "123", "url": "http://x"}]})
    assert bad_peer.value.key == "peers 第 1 项 ebrid"
    with pytest.raises(InterconnectConfigError):
        interconnect_settings({**section, "success_ratio": 0})


def _parts() -> Any:
    return SimpleNamespace(clock=None)


async def test_not_configured_means_no_interconnect(tmp_path: Path) -> None:
    app = web.Application()
    async with aiohttp.ClientSession() as http:
        assert attach_interconnect(_parts(), app, {}, base_dir=tmp_path, session=http) is None
        assert attach_interconnect(_parts(), app, {"enabled": False, "x": 1}, base_dir=tmp_path, session=http) is None
        with pytest.raises(InterconnectConfigError) as half:
            attach_interconnect(_parts(), app, {"cert_sn": "101"}, base_dir=tmp_path, session=http)
    assert half.value.key == "private_key" and "enabled = false" in str(half.value)
    assert len(app.router.routes()) == 0
