"""Restart recovery of the pipeline (重启恢复): put unfinished broadcasts back on air without replaying
what was played.

Runs once at start, after the desk has restored the policy (which also puts back on hold what was
waiting for an operator). Owns the choice of how each unfinished broadcast continues; the deliveries
already acknowledged or played are the dispatcher's to leave alone.
"""

from __future__ import annotations

import json
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.model import AudioRef, BroadcastState
from broadcast.pipeline.pipeline import Pipeline
from broadcast.store import broadcasts as store

log = logging.getLogger(__name__)


async def resume_unfinished(pipeline: Pipeline, engine: AsyncEngine, clock: Clock) -> int:
    """Continue every broadcast left received, rendering or broadcasting; returns how many."""
    resumed = 0
    for row in await store.unfinished_broadcasts(engine):
        bid, ebm = int(row["id"]), str(row["ebm_id"])
        state = BroadcastState(row["state"])
        draft = store.record_to_draft(json.loads(row["message_json"]))
        if row["end_at"] <= clock.now():
            await store.transition(engine, bid, BroadcastState.EXPIRED, clock.now())
            continue
        targets = await pipeline.targets_of(bid)
        if state is BroadcastState.BROADCASTING and row["audio_digest"]:
            audio = AudioRef(row["audio_digest"], row["audio_format"], row["audio_duration_s"] or 0.0)
            await pipeline.redispatch(bid, ebm, draft, targets, audio)
        elif state is BroadcastState.RECEIVED:
            pipeline.air(bid, ebm, draft, targets)
        else:
            pipeline.continue_airing(bid, ebm, draft, targets, on_air=state is BroadcastState.BROADCASTING)
        resumed += 1
        log.info("broadcast %d (%s) resumed after restart", bid, ebm)
    return resumed
