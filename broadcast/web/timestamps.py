"""How the HTTP API writes a moment: ISO 8601 in Beijing time (``+08:00``); an absent moment stays null.

One helper for every route module, so all answers agree. Never parses input.
"""

from __future__ import annotations

from datetime import datetime

from broadcast.clock import BEIJING


def beijing_iso(ts: datetime | None) -> str | None:
    return ts.astimezone(BEIJING).isoformat() if ts is not None else None
