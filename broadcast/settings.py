"""Configuration: config/ebc.toml defaults, merged with an operator's file, resolved to typed settings.

Owns file reading and validation of settings; never starts anything.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = REPO_ROOT / "config" / "ebc.toml"


class SettingsError(ValueError):
    pass


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    public_url: str
    max_body_bytes: int
    database_url: str
    inventory_path: Path
    audio_cache_dir: Path
    audio_max_bytes: int
    retry_initial_s: float
    retry_max_s: float
    concurrency_per_adapter: int
    adapters: dict[str, dict[str, Any]]
    sim: dict[str, Any] = field(default_factory=dict)
    base_dir: Path = REPO_ROOT
    raw: dict[str, Any] = field(default_factory=dict)  # every section as read, for components' own settings

    def audio_base_url(self, bound_port: int | None = None) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{bound_port or self.port}"


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def _db_url(base: Path, url: str) -> str:
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        path = _path(base, url[len(prefix) :])
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return url


def load_settings(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None, *, base_dir: Path = REPO_ROOT
) -> Settings:
    """Defaults ← file at ``path`` ← ``overrides``. Relative paths resolve against ``base_dir``."""
    with DEFAULT_CONFIG.open("rb") as f:
        raw: dict[str, Any] = tomllib.load(f)
    if path is not None:
        try:
            with path.open("rb") as f:
                raw = _merge(raw, tomllib.load(f))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"cannot read configuration {path}: {exc}") from exc
    if overrides:
        raw = _merge(raw, overrides)
    try:
        srv, db, audio, disp = raw["server"], raw["database"], raw["audio"], raw["dispatch"]
        return Settings(
            host=str(srv["host"]),
            port=int(srv["port"]),
            public_url=str(srv.get("public_url", "")),
            max_body_bytes=int(srv["max_body_bytes"]),
            database_url=_db_url(base_dir, str(db["url"])),
            inventory_path=_path(REPO_ROOT, str(raw["inventory"]["path"])),
            audio_cache_dir=_path(base_dir, str(audio["cache_dir"])),
            audio_max_bytes=int(audio["max_bytes"]),
            retry_initial_s=float(disp["retry_initial_s"]),
            retry_max_s=float(disp["retry_max_s"]),
            concurrency_per_adapter=int(disp["concurrency_per_adapter"]),
            adapters={k: dict(v) for k, v in raw.get("adapters", {}).items()},
            sim=dict(raw.get("sim", {})),
            base_dir=base_dir,
            raw=raw,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"configuration value missing or invalid: {exc}") from exc
