"""Attaches the upper-platform interconnect to the controller's web app from its `[interconnect]` config
section: `attach_interconnect(parts, app, settings.raw.get("interconnect", {}), base_dir=…, session=…)`.

Reads the section (see config/interconnect.example.toml), loads the SM2 private key file and the trusted
upper public keys (by certificate serial), builds `InterconnectSettings` (the `[interconnect.retry]` keys
become the outbox's `OutboxSettings`) and installs the interconnect on the controller's aiohttp app with a
`ControllerFacade` over the county parts and the one HTTP session it is given. Returns None when the
section is absent or disabled. Must be called before the app starts (the parts start with the app).
Never generates keys, never logs key material, never opens a session and never starts anything itself.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from broadcast.codes import ResourceCode
from broadcast.interconnect.ebd.keys import KeyFileError, read_private_key, read_public_key
from broadcast.interconnect.ebd.signing import PublicKey, Signer, Verifier, normalise_cert_sn
from broadcast.interconnect.facade import ControllerFacade, CountyParts
from broadcast.interconnect.link import LinkTiming
from broadcast.interconnect.outbox import OutboxSettings
from broadcast.interconnect.routes import Interconnect, InterconnectSettings, install_interconnect
from broadcast.interconnect.upper_boundary import UpperPeer

log = logging.getLogger(__name__)

SECTION = "interconnect"


class ConfigFault(StrEnum):
    MISSING = "missing"
    INVALID = "invalid"
    KEY = "key"


class InterconnectConfigError(ValueError):
    """The `[interconnect]` section cannot be used; names the key and says what to fix."""

    def __init__(self, fault: ConfigFault, key: str, message: str) -> None:
        self.fault = fault
        self.key = key
        super().__init__(f"[{SECTION}] {key}：{message}")


@dataclass(frozen=True)
class Keys:
    signer: Signer
    verifier: Verifier


def is_configured(section: Mapping[str, Any]) -> bool:
    return bool(section) and bool(section.get("enabled", True)) and "private_key" in section


def _str(section: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = section.get(key, default)
    if value is None:
        raise InterconnectConfigError(
            ConfigFault.MISSING, key, "缺少必填项，请参照 config/interconnect.example.toml 填写"
        )
    if not isinstance(value, str):
        raise InterconnectConfigError(ConfigFault.INVALID, key, f"应为字符串（加引号），当前为 {value!r}")
    return value.strip()


def _float(section: Mapping[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise InterconnectConfigError(ConfigFault.INVALID, key, f"应为正数，当前为 {value!r}")
    return float(value)


def _table(section: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = section.get(key, {})
    if not isinstance(value, Mapping):
        raise InterconnectConfigError(ConfigFault.INVALID, key, f"应为表（[interconnect.{key}]）")
    return value


def load_keys(section: Mapping[str, Any], base_dir: Path, *, clock: Any = None) -> Keys:
    """The signer (our private key + cert SN) and the verifier (trusted upper keys by cert SN)."""
    key_value = _str(section, "private_key")
    key_path = Path(key_value) if Path(key_value).is_absolute() else base_dir / key_value
    cert_sn = normalise_cert_sn(_str(section, "cert_sn"))
    try:
        private = read_private_key(key_path)
        signer = Signer(private, cert_sn, issuer_id=_str(section, "issuer_id", "000000000000"), clock=clock)
    except KeyFileError as exc:
        raise InterconnectConfigError(ConfigFault.KEY, "private_key", str(exc)) from exc
    except ValueError as exc:
        raise InterconnectConfigError(
            ConfigFault.INVALID, "cert_sn", f"证书序列号应为不超过 12 位的十进制数字（{exc}）"
        ) from exc
    trusted: dict[str, PublicKey] = {}
    for sn, value in _table(section, "trusted").items():
        if not isinstance(value, str):
            raise InterconnectConfigError(
                ConfigFault.INVALID, f"trusted.{sn}", "应为公钥文件路径或十六进制公钥字符串"
            )
        try:
            trusted[normalise_cert_sn(str(sn))] = read_public_key(value, base_dir)
        except KeyFileError as exc:
            raise InterconnectConfigError(ConfigFault.KEY, f"trusted.{sn}", str(exc)) from exc
    if not trusted:
        log.warning("[interconnect] trusts no upper key: every signed EBM will be refused (ResultCode 4)")
    return Keys(signer, Verifier(trusted))


def _peers(section: Mapping[str, Any]) -> tuple[UpperPeer, ...]:
    raw = section.get("peers", [])
    if not isinstance(raw, list):
        raise InterconnectConfigError(ConfigFault.INVALID, "peers", "应为 [[interconnect.peers]] 表数组")
    peers: list[UpperPeer] = []
    for n, item in enumerate(raw, start=1):
        where = f"peers 第 {n} 项"
        if not isinstance(item, Mapping):
            raise InterconnectConfigError(ConfigFault.INVALID, where, "应为表")
        ebrid = _str(item, "ebrid")
        try:
            ResourceCode.parse(ebrid)
        except ValueError as exc:
            raise InterconnectConfigError(
                ConfigFault.INVALID, f"{where} ebrid", f"应为 23 位资源编码（{exc}）"
            ) from exc
        url = _str(item, "url")
        if not url.startswith(("http://", "https://")):
            raise InterconnectConfigError(
                ConfigFault.INVALID, f"{where} url", f"应为 http(s) 地址，当前为 {url!r}"
            )
        peers.append(UpperPeer(ebrid, url, _str(item, "name", "")))
    return tuple(peers)


def interconnect_settings(section: Mapping[str, Any], *, public_url: str = "") -> InterconnectSettings:
    """InterconnectSettings from the section; callback_url defaults to <public_url><ebd_path>."""
    ebd_path = _str(section, "ebd_path", "/ebd")
    if not ebd_path.startswith("/"):
        raise InterconnectConfigError(ConfigFault.INVALID, "ebd_path", f"应以 / 开头，当前为 {ebd_path!r}")
    callback = _str(section, "callback_url", "") or (
        f"{public_url.rstrip('/')}{ebd_path}" if public_url else ""
    )
    accept = section.get("accept_dest", [])
    if not isinstance(accept, list) or not all(isinstance(a, str) for a in accept):
        raise InterconnectConfigError(ConfigFault.INVALID, "accept_dest", "应为字符串数组")
    timing, retry = _table(section, "timing"), _table(section, "retry")
    d_timing, d_outbox = LinkTiming(), OutboxSettings()
    ratio = section.get("success_ratio", 1.0)
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
        raise InterconnectConfigError(
            ConfigFault.INVALID, "success_ratio", f"应为 0 到 1 之间的数，当前为 {ratio!r}"
        )
    return InterconnectSettings(
        peers=_peers(section),
        ebd_path=ebd_path,
        callback_url=callback or None,
        accept_dest=frozenset(accept),
        media_url=_str(section, "media_url", "") or None,
        media_token=_str(section, "media_token", "") or None,
        timing=LinkTiming(
            heartbeat_s=_float(timing, "heartbeat_s", d_timing.heartbeat_s),
            offline_after_s=_float(timing, "offline_after_s", d_timing.offline_after_s),
            state_s=_float(timing, "state_s", d_timing.state_s),
            info_s=_float(timing, "info_s", d_timing.info_s),
            timeout_s=_float(timing, "timeout_s", d_timing.timeout_s),
        ),
        outbox=OutboxSettings(
            backoff=replace(
                d_outbox.backoff,
                initial_s=_float(retry, "initial_s", d_outbox.backoff.initial_s),
                max_s=_float(retry, "max_s", d_outbox.backoff.max_s),
            ),
            max_age_s=_float(retry, "max_age_s", d_outbox.max_age_s),
            timeout_s=_float(retry, "timeout_s", d_outbox.timeout_s),
        ),
        success_ratio=float(ratio),
        run_loops=bool(section.get("run_loops", True)),
    )


def attach_interconnect(
    parts: CountyParts,
    app: web.Application,
    settings_section: Mapping[str, Any],
    *,
    base_dir: Path,
    session: aiohttp.ClientSession,
    public_url: str = "",
) -> Interconnect | None:
    """Install the interconnect on `app` (before it starts); None when `[interconnect]` is not configured.
    Everything it sends goes through `session`, which the caller owns (the controller's one session).

    Raises InterconnectConfigError when the section is present but unusable (the controller should refuse to
    start rather than run without the upper link it was configured for)."""
    section = dict(settings_section or {})
    if not is_configured(section):
        if section and section.get("enabled", True):
            raise InterconnectConfigError(
                ConfigFault.MISSING,
                "private_key",
                "已配置 [interconnect] 但缺少 SM2 私钥路径；不需要上级平台接入时请设 enabled = false",
            )
        log.info("upper-platform interconnect not configured")
        return None
    keys = load_keys(section, base_dir, clock=parts.clock)
    ic_settings = interconnect_settings(section, public_url=public_url)
    facade = ControllerFacade(parts)
    ic = install_interconnect(
        app,
        facade,
        engine=parts.engine,
        signer=keys.signer,
        verifier=keys.verifier,
        clock=parts.clock,
        settings=ic_settings,
        session=session,
    )
    log.info(
        "upper-platform interconnect on %s for %s, %d upper platform(s), signing with cert %s",
        ic_settings.ebd_path,
        facade.platform_code,
        len(ic_settings.peers),
        keys.signer.cert_sn,
    )
    return ic
