"""CAP feed configuration (预警信息源配置): what the poller in `broadcast.sources.feeds.poller` is
configured with.

Owns `FeedConfig` (with `BasicAuth` / `BearerAuth` and its backoff `RetryPolicy`), `feeds_from_config`
(``[[feeds]]`` entries), `FeedErrorKind` / `FeedError`, `redact_url`, `basic_auth_header`, `SubmitFn` and
`MAX_PARSE_ATTEMPTS`. What the poller keeps per feed is in `broadcast.sources.feeds.state`.

Must never fetch, poll, sleep or touch the database (the `FeedPoller` does), never parse CAP, and never put
credentials into reprs or messages (auth values are kept out of reprs; URLs are shown without userinfo and
query).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from broadcast.retry import RetryPolicy
from broadcast.sources.feeds.formats import FORMATS

SubmitFn = Callable[[bytes, str], Awaitable[object]]
MAX_PARSE_ATTEMPTS = 3  # consecutive rounds a CAP document may fail to parse before it is given up


@dataclass(frozen=True)
class BasicAuth:
    user: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BearerAuth:
    token: str = field(repr=False)


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str
    format: str = "atom"  # a key of feeds_formats.FORMATS
    interval_s: float = 60.0
    auth: BasicAuth | BearerAuth | None = None
    max_bytes: int = 2 * 1024 * 1024  # index / single document
    max_items: int = 100  # per round, newest first as the feed lists them
    timeout_s: float = 20.0
    max_backoff_s: float = 1800.0

    @property
    def retry(self) -> RetryPolicy:
        """Backoff after failed rounds: interval·2^n (n = consecutive failures), capped at
        ``max_backoff_s``, times a jitter in [0.5, 1). The poller never waits less than half the interval."""
        return RetryPolicy(
            initial_s=self.interval_s * 2, max_s=self.max_backoff_s, factor=2.0, jitter=(0.5, 1.0)
        )


class FeedErrorKind(StrEnum):
    CONNECT = "connect"
    TIMEOUT = "timeout"
    HTTP_STATUS = "http_status"
    TOO_LARGE = "too_large"
    BAD_FORMAT = "bad_format"
    ITEM_FETCH = "item_fetch"
    BAD_CAP = "bad_cap"
    SUBMIT = "submit"


class FeedError(Exception):
    def __init__(self, kind: FeedErrorKind, feed: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.feed = feed
        self.message = message


def redact_url(url: str) -> str:
    """A URL fit for logs and health: no userinfo, no query (tokens hide there)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}" + ("?…" if parts.query else "")


def basic_auth_header(user: str, password: str) -> str:
    """RFC 7617 Basic credentials (UTF-8), built here because aiohttp.BasicAuth is deprecated."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def feeds_from_config(entries: Sequence[Mapping[str, Any]]) -> list[FeedConfig]:
    """``[[feeds]]`` entries: name, url, format (atom/rss/json/cap), interval_s, and either
    user + password (basic) or token (bearer). Secrets may be given as ``password_env`` / ``token_env``
    (the name of an environment variable) to keep them out of the file."""
    out: list[FeedConfig] = []
    for e in entries:
        try:
            name, url = str(e["name"]), str(e["url"])
        except KeyError as exc:
            raise ValueError(f"[[feeds]] 条目缺少字段 {exc}（需要 name 和 url）") from None
        password = e.get("password") or os.environ.get(str(e.get("password_env", "")), "")
        token = e.get("token") or os.environ.get(str(e.get("token_env", "")), "")
        auth: BasicAuth | BearerAuth | None = None
        if e.get("user"):
            auth = BasicAuth(str(e["user"]), str(password))
        elif token:
            auth = BearerAuth(str(token))
        fmt = str(e.get("format", "atom"))
        if fmt not in FORMATS:
            raise ValueError(f"源 {name} 的 format {fmt!r} 不受支持，可选：{', '.join(sorted(FORMATS))}")
        out.append(FeedConfig(name, url, format=fmt, interval_s=float(e.get("interval_s", 60.0)), auth=auth))
    return out
