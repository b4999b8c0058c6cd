"""What the feed poller keeps per feed (信息源运行状态): `FeedState` — when the feed is next due, its
HTTP validators, error streak, counters and the parse-failure streaks of its documents — with the health
view ``GET /api/sources`` shows, and `ParsedItem`, a fetched and parsed item waiting for its turn.

Plain records: must never fetch, sleep or touch the database (the `FeedPoller` does), and never show
credentials (URLs are shown without userinfo and query).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broadcast.sources.cap.model import CapAlert
from broadcast.sources.feeds.config import FeedConfig, FeedError, redact_url


@dataclass
class FeedState:
    config: FeedConfig
    next_due: datetime
    etag: str = ""
    last_modified: str = ""
    consecutive_errors: int = 0
    last_success: datetime | None = None
    last_error: FeedError | None = None
    last_error_at: datetime | None = None
    requests: int = 0
    not_modified: int = 0
    submitted: int = 0
    duplicates: int = 0
    rejected: int = 0
    newest_sent: datetime | None = None
    # url|… or bad|<sha256> of a document that failed to parse → consecutive rounds it failed in
    parse_failures: dict[str, int] = field(default_factory=dict)

    def health(self, now: datetime) -> dict[str, Any]:
        """The feed's health as ``GET /api/sources`` lists it."""
        err = self.last_error
        if self.last_success is None and err is None:
            status = "pending"
        else:
            status = "error" if self.consecutive_errors else "ok"
        return {
            "name": self.config.name,
            "url": redact_url(self.config.url),
            "format": self.config.format,
            "status": status,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_error": None
            if err is None or self.last_error_at is None
            else {"kind": str(err.kind), "message": err.message, "at": self.last_error_at.isoformat()},
            "consecutive_errors": self.consecutive_errors,
            "items_seen": self.submitted + self.duplicates + self.rejected,
            "items_submitted": self.submitted,
            "items_duplicate": self.duplicates,
            "items_rejected": self.rejected,
            "items_retrying": len(self.parse_failures),
            "requests": self.requests,
            "not_modified": self.not_modified,
            "newest_sent": self.newest_sent.isoformat() if self.newest_sent else None,
            "lag_s": (now - self.newest_sent).total_seconds() if self.newest_sent else None,
            "next_due": self.next_due.isoformat(),
        }


@dataclass(frozen=True)
class ParsedItem:
    """A fetched and parsed item, waiting for its turn to be submitted."""

    data: bytes
    alert: CapAlert
    url_key: str
    position: int  # in the feed's listing (0 = first listed, normally the newest)
