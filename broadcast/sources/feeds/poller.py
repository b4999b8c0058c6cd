"""CAP feed poller (预警信息源轮询): fetches configured feeds and hands each new CAP document to intake once.

Owns per-feed scheduling (interval; on errors the feed's jittered exponential `RetryPolicy`), conditional GET
(ETag / Last-Modified, so an unchanged feed costs one 304), per-feed health for ``GET /api/sources``,
and the ``feed_seen`` table that makes "once" hold across restarts: a CAP is keyed by
``SourceRef(CAP, sender, identifier, sent).key`` (the same key intake uses), checked before
``submit(data, feed)`` and recorded only after it returns. Feed formats live in `feeds.formats`, the feed
config, auth and error types (`FeedConfig`, `FeedError`, `feeds_from_config`, …) in `feeds.config`, what
is kept per feed (`FeedState`, with its health view) in `feeds.state`. The table is created by
``prepare_schema`` (the composition root names it), never here.

Never parses CAP beyond reading its key (intake does the rest), never decides whether to broadcast,
never sleeps in `tick` (tests drive it with a manual clock), never logs or reports credentials (auth
values are kept out of reprs; URLs are shown without userinfo and query).

Contract of ``submit``: returning means "processed" (accepted, duplicate or permanently refused — the
caller maps intake refusals to a return); raising means "try again": the item is not marked seen and
the feed's validators are not stored, so the next round fetches it again.

Order within a round: every item is fetched and parsed first, then submitted in ascending CAP ``sent``
(equal times: oldest listed first, feeds list newest first), so an Alert always reaches intake before
its Update/Cancel when both arrive in the same round. When a submit fails, the items of that round
that reference it (its Updates/Cancels) are held back too and retried with it next round, in order, so
a retry cannot reorder them either; unrelated alerts go ahead.

A CAP document that does not parse is retried, not written off: one garbled or truncated fetch must not
lose an alert. It counts as rejected once (health ``items_rejected``; it is "retrying" meanwhile), the
round is left unfinished (validators not stored, so the next round fetches the index in full and the
document again), and only after ``MAX_PARSE_ATTEMPTS`` (3) consecutive rounds in which it failed is it
marked ``bad`` in ``feed_seen`` and no longer fetched. The same bytes failing twice are NOT taken as
proof: a server may serve the same partly written file for a while, and retrying is cheap. A linked
document is followed by its URL (a later good fetch clears the streak); an inline one by its bytes
(different bytes are a different document). Streak counts live in memory: a restart allows up to 3 more
attempts. A streak ends when the item is no longer offered or parses.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from sqlalchemy import Column, String, Table, Text, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.clock import Clock
from broadcast.model import SourceKind, SourceRef
from broadcast.sources.cap.errors import CapError
from broadcast.sources.cap.parse import parse_cap
from broadcast.sources.feeds.config import (
    MAX_PARSE_ATTEMPTS,
    BasicAuth,
    FeedConfig,
    FeedError,
    FeedErrorKind,
    SubmitFn,
    basic_auth_header,
    redact_url,
)
from broadcast.sources.feeds.formats import FORMATS, FeedFormatError, FeedItem, FormatParser
from broadcast.sources.feeds.state import FeedState, ParsedItem
from broadcast.store.tables import UtcDateTime, metadata

log = logging.getLogger(__name__)

feed_seen = Table(
    "feed_seen",
    metadata,
    Column("digest", String(64), primary_key=True),  # sha256 of key: keys can be long
    Column("key", Text, nullable=False),
    Column("kind", String(8), nullable=False),  # cap | url | bad
    Column("feed", String(100), nullable=False),
    Column("sent", UtcDateTime, nullable=True),
    Column("seen_at", UtcDateTime, nullable=False),
)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


class FeedPoller:
    def __init__(
        self,
        feeds: Sequence[FeedConfig],
        *,
        session: aiohttp.ClientSession,
        engine: AsyncEngine,
        submit: SubmitFn,
        clock: Clock,
        rng: random.Random | None = None,
        formats: Mapping[str, FormatParser] | None = None,
        max_cap_bytes: int = 256 * 1024,
    ) -> None:
        self._formats = dict(formats if formats is not None else FORMATS)
        names = [f.name for f in feeds]
        if len(set(names)) != len(names):
            raise ValueError(f"feed names must be unique: {names}")
        for f in feeds:
            if f.format not in self._formats:
                raise ValueError(
                    f"feed {f.name!r}: unknown format {f.format!r}; known: {sorted(self._formats)}"
                )
            if urlsplit(f.url).scheme not in ("http", "https"):
                raise ValueError(f"feed {f.name!r}: URL must be http(s), got {redact_url(f.url)}")
            if f.interval_s <= 0 or f.max_backoff_s <= 0:
                raise ValueError(f"feed {f.name!r}: interval and max backoff must be positive")
        self._session = session
        self._engine = engine
        self._submit = submit
        self._clock = clock
        self._rng = rng or random.Random()
        self.max_cap_bytes = max_cap_bytes
        now = clock.now()
        self._states = {f.name: FeedState(f, next_due=now) for f in feeds}
        self._inflight: set[str] = set()

    # --- lifecycle ----------------------------------------------------------------------------

    async def prepare(self) -> None:
        """Restore each feed's newest ``sent`` (for lag) from the seen table."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                select(feed_seen.c.feed, func.max(feed_seen.c.sent))
                .where(feed_seen.c.kind == "cap")
                .group_by(feed_seen.c.feed)
            )
            for name, sent in rows:
                if name in self._states and sent is not None:
                    self._states[name].newest_sent = sent

    def next_due(self) -> datetime | None:
        """When the earliest feed is next due (None without feeds)."""
        return min((s.next_due for s in self._states.values()), default=None)

    async def tick(self) -> list[str]:
        """Poll every feed due now; return their names. Never sleeps."""
        now = self._clock.now()
        due = [s for s in self._states.values() if s.next_due <= now]
        await asyncio.gather(*(self._poll(s) for s in due))
        return [s.config.name for s in due]

    async def poll(self, name: str) -> None:
        """Poll one feed now, whatever its schedule (operator's "refresh")."""
        await self._poll(self._states[name])

    async def run(self, stop: asyncio.Event, *, max_wait_s: float = 30.0) -> None:
        """Production loop: tick, then wait until the next feed is due or ``stop`` is set."""
        while not stop.is_set():
            await self.tick()
            due = self.next_due()
            wait = max_wait_s if due is None else (due - self._clock.now()).total_seconds()
            try:
                await asyncio.wait_for(stop.wait(), timeout=min(max(wait, 0.05), max_wait_s))
            except TimeoutError:
                pass

    # --- health -------------------------------------------------------------------------------

    def health(self) -> list[dict[str, Any]]:
        now = self._clock.now()
        return [s.health(now) for s in self._states.values()]

    # --- one round ----------------------------------------------------------------------------

    async def _poll(self, state: FeedState) -> None:
        cfg = state.config
        headers: dict[str, str] = {}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.last_modified:
            headers["If-Modified-Since"] = state.last_modified
        try:
            status, body, validators = await self._get(state, cfg.url, headers, cfg.max_bytes, index=True)
            if status == 304:
                state.not_modified += 1
                self._succeeded(state)
                return
            try:
                items = self._formats[cfg.format](body, cfg.url)
            except FeedFormatError as exc:
                raise FeedError(
                    FeedErrorKind.BAD_FORMAT, cfg.name, f"源 {cfg.name} 的内容无法解析：{exc}"
                ) from None
        except FeedError as exc:
            self._failed(state, exc)
            return
        all_done = True
        parsed: list[ParsedItem] = []
        failing: set[str] = set()
        for position, item in enumerate(items[: cfg.max_items]):
            outcome = await self._fetch_and_parse(state, item, position, failing)
            if isinstance(outcome, ParsedItem):
                parsed.append(outcome)
            else:
                all_done = outcome and all_done
        self._end_streaks(state, failing)
        # Oldest first: an Alert before its Update/Cancel; equal times in reverse listing order.
        parsed.sort(key=lambda p: (p.alert.sent, -p.position))
        waiting: set[tuple[str, str, str]] = set()  # (sender, identifier, sent) not delivered this round
        for item_parsed in parsed:
            alert = item_parsed.alert
            if waiting.intersection(alert.references):
                # Its Alert (or an earlier Update) was not delivered: an Update/Cancel must not overtake it.
                delivered = False
                log.info("feed %s: %s waits for the alert it references", cfg.name, alert.identifier)
            else:
                delivered = await self._deliver(state, item_parsed)
            if not delivered:
                all_done = False
                waiting.add((alert.sender, alert.identifier, alert.sent.isoformat()))
        if all_done:
            # Only once every item is processed may the feed be marked unchanged for the next round.
            state.etag, state.last_modified = validators
        self._succeeded(state)

    async def _get(
        self, state: FeedState, url: str, headers: dict[str, str], limit: int, *, index: bool
    ) -> tuple[int, bytes, tuple[str, str]]:
        cfg = state.config
        auth = cfg.auth
        if auth is not None and _origin(url) == _origin(cfg.url):  # never send credentials elsewhere
            if isinstance(auth, BasicAuth):
                headers["Authorization"] = basic_auth_header(auth.user, auth.password)
            else:
                headers["Authorization"] = f"Bearer {auth.token}"
        kind = FeedErrorKind.CONNECT if index else FeedErrorKind.ITEM_FETCH
        shown = redact_url(url)
        state.requests += 1
        try:
            async with self._session.get(
                url, headers=headers, timeout=aiohttp.ClientTimeout(total=cfg.timeout_s), max_redirects=5
            ) as resp:
                validators = (resp.headers.get("ETag", ""), resp.headers.get("Last-Modified", ""))
                if resp.status == 304 and index:
                    return 304, b"", validators
                if resp.status != 200:
                    raise FeedError(
                        FeedErrorKind.HTTP_STATUS if index else kind,
                        cfg.name,
                        f"源 {cfg.name} 返回 HTTP {resp.status}（{shown}）；请检查地址与账号权限，系统将自动重试",
                    )
                too_large = FeedError(
                    FeedErrorKind.TOO_LARGE,
                    cfg.name,
                    f"源 {cfg.name} 的响应超过 {limit} 字节上限（{shown}），已中止读取；请联系源方或调大上限",
                )
                if resp.content_length is not None and resp.content_length > limit:
                    raise too_large
                buf = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    buf += chunk
                    if len(buf) > limit:
                        raise too_large
                return resp.status, bytes(buf), validators
        except TimeoutError:
            raise FeedError(
                FeedErrorKind.TIMEOUT,
                cfg.name,
                f"源 {cfg.name} 在 {cfg.timeout_s:g} 秒内无响应（{shown}），将自动重试",
            ) from None
        except aiohttp.ClientError as exc:
            raise FeedError(
                kind,
                cfg.name,
                f"无法从源 {cfg.name} 获取数据（{type(exc).__name__}，{shown}）；请检查网络和地址，将自动重试",
            ) from None

    async def _fetch_and_parse(
        self, state: FeedState, item: FeedItem, position: int, failing: set[str]
    ) -> ParsedItem | bool:
        """Fetch (when linked) and parse one item. A `ParsedItem` is to be submitted; True means processed
        (seen before, or given up); False means it must be tried again next round."""
        name = state.config.name
        url_key = f"url|{name}|{item.url}" if item.url else ""
        if url_key and await self._is_seen(url_key):
            return True
        if item.url:
            try:
                _, data, _ = await self._get(state, item.url, {}, self.max_cap_bytes, index=False)
            except FeedError as exc:
                self._note_error(state, exc)
                if url_key in state.parse_failures:
                    failing.add(url_key)  # a fetch error neither extends nor ends a parse-failure streak
                return False
        else:
            data = item.data
        bad_key = f"bad|{hashlib.sha256(data).hexdigest()}"
        if not url_key and await self._is_seen(bad_key):
            return True
        try:
            alert = parse_cap(data, max_bytes=self.max_cap_bytes)
        except CapError as exc:
            failing.add(url_key or bad_key)
            return await self._parse_failed(state, item, url_key or bad_key, exc)
        if url_key and state.parse_failures.pop(url_key, None) is not None:
            state.rejected -= 1  # it was a bad fetch, not a bad document
            log.info("feed %s: %s parses now, after earlier failures", name, redact_url(item.url))
        if state.newest_sent is None or alert.sent > state.newest_sent:
            state.newest_sent = alert.sent
        return ParsedItem(data, alert, url_key, position)

    async def _parse_failed(self, state: FeedState, item: FeedItem, fail_key: str, exc: CapError) -> bool:
        """Count one more failed round for this document; give it up (True) after MAX_PARSE_ATTEMPTS."""
        name = state.config.name
        attempts = state.parse_failures.get(fail_key, 0) + 1
        if attempts == 1:
            state.rejected += 1  # reported once per document, however often it is retried
        shown = f"（{redact_url(item.url)}）" if item.url else ""
        if attempts >= MAX_PARSE_ATTEMPTS:
            outcome = f"已连续 {attempts} 轮失败，不再重试；请联系源方修正该文档"
        else:
            outcome = f"第 {attempts} 次失败，下一轮将重新获取并重试"
        self._note_error(
            state,
            FeedError(
                FeedErrorKind.BAD_CAP,
                name,
                f"源 {name} 的一条 CAP 无法解析{shown}：{exc.message}（{outcome}）",
            ),
        )
        if attempts < MAX_PARSE_ATTEMPTS:
            state.parse_failures[fail_key] = attempts
            return False
        state.parse_failures.pop(fail_key, None)
        log.warning("feed %s: giving up on a CAP document after %d failed rounds %s", name, attempts, shown)
        await self._mark(fail_key, "bad", name)
        return True

    def _end_streaks(self, state: FeedState, failing: set[str]) -> None:
        """Documents that failed before but were not failing this round (gone from the feed, or inline
        bytes replaced) are no longer retried, and no longer count as rejected."""
        for key in [k for k in state.parse_failures if k not in failing]:
            del state.parse_failures[key]
            state.rejected -= 1

    async def _deliver(self, state: FeedState, item: ParsedItem) -> bool:
        """Submit one parsed item unless already seen; False when it must be tried again next round."""
        name, alert, url_key = state.config.name, item.alert, item.url_key
        key = SourceRef(SourceKind.CAP, alert.sender, alert.identifier, alert.sent.isoformat()).key
        if await self._is_seen(key):
            state.duplicates += 1
            if url_key:
                await self._mark(url_key, "url", name)
            return True
        if key in self._inflight:  # another feed is submitting the same CAP right now
            return False
        self._inflight.add(key)
        try:
            await self._submit(item.data, name)
        except Exception as exc:
            self._note_error(
                state,
                FeedError(
                    FeedErrorKind.SUBMIT,
                    name,
                    f"源 {name} 的预警 {alert.identifier} 提交处理失败（{type(exc).__name__}），下一轮将重试",
                ),
            )
            log.warning("feed %s: submit of %s failed, will retry", name, alert.identifier, exc_info=True)
            self._inflight.discard(key)
            return False
        state.submitted += 1
        try:
            # Marked seen before the in-flight guard is released, so no other feed slips in between.
            await self._mark(key, "cap", name, alert.sent)
        finally:
            self._inflight.discard(key)
        if url_key:
            await self._mark(url_key, "url", name)
        return True

    # --- bookkeeping --------------------------------------------------------------------------

    async def _is_seen(self, key: str) -> bool:
        async with self._engine.connect() as conn:
            row = await conn.execute(select(feed_seen.c.digest).where(feed_seen.c.digest == _digest(key)))
            return row.first() is not None

    async def _mark(self, key: str, kind: str, feed: str, sent: datetime | None = None) -> None:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(
                    insert(feed_seen).values(
                        digest=_digest(key),
                        key=key,
                        kind=kind,
                        feed=feed,
                        sent=sent,
                        seen_at=self._clock.now(),
                    )
                )
        except IntegrityError:
            pass  # already recorded (a concurrent round or another feed)

    def _note_error(self, state: FeedState, exc: FeedError) -> None:
        state.last_error = exc
        state.last_error_at = self._clock.now()

    def _succeeded(self, state: FeedState) -> None:
        now = self._clock.now()
        if state.consecutive_errors:
            log.info("feed %s recovered after %d failed rounds", state.config.name, state.consecutive_errors)
        state.consecutive_errors = 0
        state.last_success = now
        state.next_due = now + timedelta(seconds=state.config.interval_s)

    def _failed(self, state: FeedState, exc: FeedError) -> None:
        cfg = state.config
        if state.consecutive_errors == 0:
            log.warning("feed %s is failing: %s %s", cfg.name, exc.kind, redact_url(cfg.url))
        state.consecutive_errors += 1
        self._note_error(state, exc)
        state.next_due = self._clock.now() + timedelta(seconds=self.backoff_s(cfg, state.consecutive_errors))

    def backoff_s(self, cfg: FeedConfig, errors: int) -> float:
        """Delay after ``errors`` consecutive failures: the feed's RetryPolicy, never under half the interval."""
        return max(cfg.interval_s * 0.5, cfg.retry.delay(errors, self._rng))
