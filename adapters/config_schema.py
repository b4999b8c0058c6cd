"""The schema of each built-in adapter's configuration section (``[adapters.NAME]`` in config/ebc.toml):
which keys exist, their types, which are required. The registry checks a section against it before the
adapter is built, so a typo or a wrong type stops that adapter with a message naming the key, instead
of being silently ignored. Third-party adapters without a schema here are not checked.

Never builds adapters and never reads files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Key:
    types: tuple[type, ...]
    required: bool = False
    doc: str = ""


_COMMON = {
    "enabled": Key((bool,), doc="false: not started"),
    "platform_code": Key((str,), doc="23-digit county platform code (filled in by the controller)"),
}
_NUM = (int, float)

SCHEMAS: dict[str, dict[str, Key]] = {
    "ip_speaker": {
        "host": Key((str,), doc="address the terminals' TCP return channel binds"),
        "port": Key((int,), doc="TCP port (0 = ephemeral)"),
        "ack_timeout_s": Key(_NUM),
        "heartbeat_timeout_s": Key(_NUM, doc="silent this long → offline (3 × heartbeat interval)"),
        "liveness_check_s": Key(_NUM),
        "header_variant": Key((str,), doc="standard (12-byte) or return (11-byte) header from terminals"),
    },
    "front_end": {
        "host": Key((str,)),
        "port": Key((int,)),
        "ack_timeout_s": Key(_NUM, doc="longer than the front-end's own relay timeout"),
        "heartbeat_timeout_s": Key(_NUM),
        "liveness_check_s": Key(_NUM),
        "batch_window_s": Key(_NUM, doc="collect per-terminal sends into one instruction per front-end"),
    },
    "fm": {
        "url": Key((str,), required=True, doc="serial device path or socket://host:port"),
        "resource_code": Key((str,), required=True, doc="the transmitter's 23-digit code"),
        "baudrate": Key((int,)),
        "site": Key((int,)),
        "encoder": Key((int,)),
        "stuffing": Key((str,), doc="standard or trailing_fd"),
        "ack_timeout_s": Key(_NUM),
        "retransmits": Key((int,)),
        "pi": Key((str, int)),
        "normal": Key((dict,), doc="ps, pty, rt, tp restored after a broadcast"),
    },
    "cable_tv": {
        "url": Key((str,), required=True),
        "resource_code": Key((str,), required=True),
        "baudrate": Key((int,)),
        "original_network_id": Key((int,)),
        "ack_timeout_s": Key(_NUM),
        "retransmits": Key((int,)),
        "agency_name": Key((str,)),
        "language": Key((str,)),
        "ebit_resource_codes": Key((list,)),
    },
}


def check(name: str, section: Mapping[str, Any]) -> list[str]:
    """Problems with one adapter's section, each a Chinese sentence naming the key; [] when fine."""
    schema = SCHEMAS.get(name)
    if schema is None:
        return []
    keys = {**_COMMON, **schema}
    problems: list[str] = []
    for key, value in section.items():
        spec = keys.get(key)
        if spec is None:
            problems.append(f"[adapters.{name}] 中的 {key} 不是有效配置项，可用：{', '.join(sorted(keys))}")
        elif not isinstance(value, spec.types) or (isinstance(value, bool) and bool not in spec.types):
            wanted = "/".join(t.__name__ for t in spec.types)
            problems.append(f"[adapters.{name}] {key} 应为 {wanted}，当前为 {value!r}")
    for key, spec in keys.items():
        if spec.required and key not in section:
            problems.append(f"[adapters.{name}] 缺少必填项 {key}（{spec.doc}）")
    return problems
