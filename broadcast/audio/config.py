"""The ``[audio]`` configuration section (音频配置) turned into engines, encode options and repeats.

Owns: validating the section (engine names and order, edge-tts voice/rate/volume/pitch, offline voice
and rate, loudness method, MP3 quality, parallel encoders, repeats per severity, upload limits) with a
Chinese message naming the key, and building the ``EngineChain`` / ``AudioRenderer`` from it.

Example (every key optional; these are the defaults)::

    [audio]
    engines = ["edge", "offline"]   # tried in order; a dead network costs one attempt per back-off
    engine_backoff_s = 60
    loudness = "gain"               # "gain" (fast), "loudnorm" or "off"
    mp3_quality = 7                 # LAME 0 (best) … 9 (fastest)
    encode_jobs = 2
    upload_max_mb = 20
    upload_max_duration_s = 600
    [audio.edge]
    voice = "zh-CN-XiaoxiaoNeural"
    rate = "-10%"
    volume = "+0%"
    pitch = "+0Hz"
    [audio.offline]
    voice = "cmn"
    rate = 150
    [audio.repeats]
    red = 3
    orange = 2
    yellow = 1
    blue = 1

Must never: touch the network or synthesise anything while reading the configuration (building an
``EdgeTtsEngine`` only validates its parameters), or read files itself (the caller passes the section).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from broadcast.audio.cache import AudioCache
from broadcast.audio.encode_options import EncodeOptions, Loudness
from broadcast.audio.engines import EngineChain, TtsEngine
from broadcast.audio.render import MAX_REPEATS, AudioRenderer
from broadcast.clock import Clock
from broadcast.model import Severity

__all__ = [
    "DEFAULT_REPEATS",
    "AudioConfig",
    "AudioConfigError",
    "EngineKind",
    "audio_config",
    "build_chain",
    "build_renderer",
]


class EngineKind(StrEnum):
    EDGE = "edge"  # edge-tts, online neural voices
    OFFLINE = "offline"  # espeak-ng from the espeakng-loader wheel


DEFAULT_REPEATS: dict[Severity, int] = {Severity.RED: 3, Severity.ORANGE: 2, Severity.YELLOW: 1, Severity.BLUE: 1}
_SEVERITY_KEYS = {"red": Severity.RED, "orange": Severity.ORANGE, "yellow": Severity.YELLOW, "blue": Severity.BLUE}
_KNOWN_KEYS = frozenset(
    {
        "cache_dir",
        "max_bytes",
        "engines",
        "engine_backoff_s",
        "loudness",
        "mp3_quality",
        "encode_jobs",
        "upload_max_mb",
        "upload_max_duration_s",
        "edge",
        "offline",
        "repeats",
    }
)


class AudioConfigError(ValueError):
    """A bad ``[audio]`` setting; ``key`` is its dotted path (e.g. ``audio.edge.rate``)."""

    def __init__(self, key: str, message_zh: str) -> None:
        self.key = key
        self.message_zh = message_zh
        super().__init__(f"配置项 {key}：{message_zh}")


@dataclass(frozen=True)
class EdgeSettings:
    voice: str = "zh-CN-XiaoxiaoNeural"
    rate: str = "-10%"
    volume: str = "+0%"
    pitch: str = "+0Hz"


@dataclass(frozen=True)
class OfflineSettings:
    voice: str = "cmn"
    rate: int = 150


@dataclass(frozen=True)
class AudioConfig:
    engines: tuple[EngineKind, ...] = (EngineKind.EDGE, EngineKind.OFFLINE)
    engine_backoff_s: float = 60.0
    edge: EdgeSettings = EdgeSettings()
    offline: OfflineSettings = OfflineSettings()
    options: EncodeOptions = field(default_factory=EncodeOptions)
    repeats: Mapping[Severity, int] = field(default_factory=lambda: dict(DEFAULT_REPEATS))
    upload_max_bytes: int = 20 * 1024 * 1024
    upload_max_duration_s: float = 600.0

    def repeats_for(self, severity: Severity) -> int:
        """How many times the speech is said for a message of ``severity`` (1 for unknown/test)."""
        return self.repeats.get(severity, 1)


def _typed(section: Mapping[str, Any], key: str, path: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise AudioConfigError(f"{path}.{key}", f"应为{what}，现为 {value!r}")
    return value


def _number(section: Mapping[str, Any], key: str, path: str, default: float, lo: float, hi: float) -> float:
    if key not in section:
        return default
    value = float(_typed(section, key, path, (int, float), "数字"))
    if not lo <= value <= hi:
        raise AudioConfigError(f"{path}.{key}", f"应在 {lo:g} 到 {hi:g} 之间，现为 {value:g}")
    return value


def _table(section: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    if key not in section:
        return {}
    value = section[key]
    if not isinstance(value, Mapping):
        raise AudioConfigError(f"audio.{key}", "应为表（[audio." + key + "]）")
    return value


def _engines(section: Mapping[str, Any]) -> tuple[EngineKind, ...]:
    if "engines" not in section:
        return AudioConfig.engines
    raw = section["engines"]
    if not isinstance(raw, list) or not raw or not all(isinstance(x, str) for x in raw):
        raise AudioConfigError("audio.engines", '应为非空的引擎名列表，例如 ["edge", "offline"]')
    try:
        kinds = tuple(EngineKind(x.strip().lower()) for x in raw)
    except ValueError:
        raise AudioConfigError(
            "audio.engines", f"未知引擎 {raw!r}；可用的有 edge（在线）和 offline（离线）"
        ) from None
    if len(set(kinds)) != len(kinds):
        raise AudioConfigError("audio.engines", f"引擎重复：{raw!r}")
    return kinds


def _repeats(section: Mapping[str, Any]) -> dict[Severity, int]:
    table = _table(section, "repeats")
    out = dict(DEFAULT_REPEATS)
    for key in table:
        if key not in _SEVERITY_KEYS:
            raise AudioConfigError(f"audio.repeats.{key}", "未知级别，应为 red、orange、yellow 或 blue")
        out[_SEVERITY_KEYS[key]] = int(_number(table, key, "audio.repeats", 1, 1, MAX_REPEATS))
    return out


def audio_config(section: Mapping[str, Any]) -> AudioConfig:
    """Validate the ``[audio]`` section (a parsed TOML table); raise ``AudioConfigError``."""
    for key in section:
        if key not in _KNOWN_KEYS:
            raise AudioConfigError(f"audio.{key}", "未知配置项，请删除或核对拼写")
    edge_t, offline_t = _table(section, "edge"), _table(section, "offline")
    for key in edge_t:
        if key not in ("voice", "rate", "volume", "pitch"):
            raise AudioConfigError(f"audio.edge.{key}", "未知配置项，可用 voice、rate、volume、pitch")
    for key in offline_t:
        if key not in ("voice", "rate"):
            raise AudioConfigError(f"audio.offline.{key}", "未知配置项，可用 voice、rate")
    d_edge, d_off = EdgeSettings(), OfflineSettings()
    edge = EdgeSettings(
        **{
            k: str(_typed(edge_t, k, "audio.edge", str, "字符串")) if k in edge_t else getattr(d_edge, k)
            for k in ("voice", "rate", "volume", "pitch")
        }
    )
    offline = OfflineSettings(
        voice=str(_typed(offline_t, "voice", "audio.offline", str, "字符串"))
        if "voice" in offline_t
        else d_off.voice,
        rate=int(_number(offline_t, "rate", "audio.offline", d_off.rate, 80, 450)),
    )
    loud_raw = section.get("loudness", str(Loudness.GAIN))
    if loud_raw not in ("gain", "loudnorm", "off"):
        raise AudioConfigError("audio.loudness", f"应为 gain、loudnorm 或 off，现为 {loud_raw!r}")
    quality = int(_number(section, "mp3_quality", "audio", 7, 0, 9))
    options = EncodeOptions(
        loudnorm=loud_raw != "off",
        loudness=Loudness.GAIN if loud_raw == "off" else Loudness(loud_raw),
        mp3_quality=quality,
        encode_jobs=int(_number(section, "encode_jobs", "audio", 2, 1, 8)),
    )
    return AudioConfig(
        engines=_engines(section),
        engine_backoff_s=_number(section, "engine_backoff_s", "audio", 60.0, 1.0, 3600.0),
        edge=edge,
        offline=offline,
        options=options,
        repeats=_repeats(section),
        upload_max_bytes=int(_number(section, "upload_max_mb", "audio", 20, 1, 200) * 1024 * 1024),
        upload_max_duration_s=_number(section, "upload_max_duration_s", "audio", 600.0, 5.0, 3600.0),
    )


def _engine(kind: EngineKind, cfg: AudioConfig) -> TtsEngine:
    if kind is EngineKind.EDGE:
        from broadcast.audio.edge import EdgeTtsEngine

        e = cfg.edge
        try:
            return EdgeTtsEngine(e.voice, rate=e.rate, volume=e.volume, pitch=e.pitch)
        except ValueError as exc:  # edge-tts validates voice/rate/volume/pitch formats
            raise AudioConfigError(
                "audio.edge", f"参数无效（{exc}）；rate/volume 形如 \"-10%\"，pitch 形如 \"+0Hz\""
            ) from exc
    from broadcast.audio.espeak import EspeakEngine

    return EspeakEngine(cfg.offline.voice, rate=cfg.offline.rate)


def build_chain(cfg: AudioConfig, clock: Clock) -> EngineChain:
    """The engines in configured order; a failed engine is skipped for ``engine_backoff_s`` (doubling)."""
    engines = [_engine(kind, cfg) for kind in cfg.engines]
    return EngineChain(engines, clock=clock, backoff_s=cfg.engine_backoff_s)


def build_renderer(
    cache: AudioCache, cfg: AudioConfig, clock: Clock, *, normalise: Callable[[str], str] | None = None
) -> AudioRenderer:
    return AudioRenderer(cache, build_chain(cfg, clock), options=cfg.options, normalise=normalise)
