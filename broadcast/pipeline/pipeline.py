"""The flow of one warning after intake: targets → broadcast row → audio → dispatch → completion.

Owns the broadcast lifecycle transitions driven by the system (not by operators' approval, which the
policy stage will add in front of ``submit``). Never parses input formats and never talks to a
concrete adapter.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.audio.playout import LiveProgramme, LiveProgrammes, PlayoutError
from broadcast.clock import BEIJING, Clock
from broadcast.dispatch.dispatcher import Dispatcher
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.lifecycle import TransitionError
from broadcast.model import (
    AudioRef,
    BroadcastState,
    DeliveryOrder,
    MessageDraft,
    Severity,
    TerminalRef,
)
from broadcast.store import broadcasts as store
from terminals.inventory_model import Inventory

log = logging.getLogger(__name__)


def resolve_targets(inventory: Inventory, draft: MessageDraft) -> tuple[TerminalRef, ...]:
    """Terminals of the draft's areas plus those it names by geometry, in resource-code order."""
    by_area = inventory.resolve(draft.area_codes) if draft.area_codes else ()
    if not draft.terminal_codes:
        return by_area
    chosen = {t.resource_code: t for t in by_area}
    for code in draft.terminal_codes:
        t = inventory.terminal(code)
        if t is not None:
            chosen[code] = t
    return tuple(chosen[c] for c in sorted(chosen))


class Rendered(Protocol):
    @property
    def ref(self) -> AudioRef: ...


class Renderer(Protocol):
    async def render(self, title: str, text: str, *, repeats: int = 1) -> Rendered: ...


class Script(Protocol):
    """What to say for a message (templates: county prefix, 演练 framing, 解除 wording)."""

    def __call__(self, draft: MessageDraft) -> tuple[str, str]: ...


def plain_script(draft: MessageDraft) -> tuple[str, str]:
    return draft.primary.title, draft.primary.text


REPEATS_BY_SEVERITY = {Severity.RED: 3, Severity.ORANGE: 2}


@dataclass(frozen=True)
class Submitted:
    broadcast_id: int
    ebm_id: str
    targets: int


class Pipeline:
    def __init__(
        self,
        engine: AsyncEngine,
        inventory: Inventory,
        renderer: Renderer,
        dispatcher: Dispatcher,
        receipts: ReceiptBook,
        clock: Clock,
        *,
        audio_base_url: str,
        script: Script = plain_script,
        live: LiveProgrammes | None = None,
        repeats_for: Callable[[Severity], int] = lambda sev: REPEATS_BY_SEVERITY.get(sev, 1),
    ) -> None:
        self._engine = engine
        self._inventory = inventory
        self._renderer = renderer
        self._dispatcher = dispatcher
        self._receipts = receipts
        self._clock = clock
        self.audio_base_url = audio_base_url.rstrip("/")
        self._script = script
        self.script = script  # the drill pre-render speaks exactly what the slot will
        self._live = live
        self._repeats_for = repeats_for
        # Called when a broadcast starts going out (the intake desk stops what it supersedes).
        self.on_air: Callable[[int], Awaitable[None]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def resolve(self, draft: MessageDraft) -> tuple[TerminalRef, ...]:
        """Targets of a draft; raises terminals.inventory.UnknownAreaError for unknown areas."""
        return resolve_targets(self._inventory, draft)

    async def submit(
        self, draft: MessageDraft, *, actor: str = "", received_at: datetime | None = None
    ) -> Submitted:
        """Record the message and start it on air in the background. Returns once it is durable."""
        sub = await self.record(draft, actor=actor, received_at=received_at)
        self.air(sub.broadcast_id, sub.ebm_id, draft)
        return sub

    async def record(
        self,
        draft: MessageDraft,
        *,
        actor: str = "",
        received_at: datetime | None = None,
        policy: dict[str, Any] | None = None,
    ) -> Submitted:
        """Store the message (state received) with a queued delivery per target; nothing goes out."""
        targets = self.resolve(draft)
        bid, ebm = await store.create_broadcast(
            self._engine,
            draft,
            platform_code=self._inventory.platform_code,
            received_at=received_at or self._clock.now(),
            local_day=self._clock.now().astimezone(BEIJING).date(),
            targets=targets,
            actor=actor,
            policy=policy,
        )
        log.info("broadcast %d (%s) recorded: %s, %d terminals", bid, ebm, draft.primary.title, len(targets))
        return Submitted(bid, ebm, len(targets))

    def air(self, broadcast_id: int, ebm_id: str, draft: MessageDraft) -> None:
        """Put a recorded (or held, now released) message on air in the background."""
        self._spawn(self._run(broadcast_id, ebm_id, draft, self.resolve(draft)))

    async def hold(self, broadcast_id: int, *, detail: str, actor: str = "") -> None:
        await store.transition(
            self._engine,
            broadcast_id,
            BroadcastState.PENDING_APPROVAL,
            self._clock.now(),
            actor=actor,
            detail=detail,
        )

    async def refuse(self, broadcast_id: int, state: BroadcastState, *, detail: str, actor: str = "") -> None:
        """A held or pending message that will never go on air (rejected or expired while waiting)."""
        await store.transition(
            self._engine, broadcast_id, state, self._clock.now(), actor=actor, detail=detail
        )
        await store.cancel_queued(self._engine, broadcast_id, self._clock.now(), detail)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, bid: int, ebm: str, draft: MessageDraft, targets: Sequence[TerminalRef]) -> None:
        try:
            await store.transition(self._engine, bid, BroadcastState.RENDERING, self._clock.now())
            if self.on_air is not None:
                await self.on_air(bid)
            await self._render_and_air(bid, ebm, draft, targets)
        except TransitionError as exc:
            # Stopped, rejected or expired while it was being prepared: it must not go out.
            log.info("broadcast %d (%s) not put on air: %s", bid, ebm, exc)
        except Exception as exc:
            log.exception("broadcast %d (%s) could not go on air", bid, ebm)
            try:
                await store.transition(
                    self._engine,
                    bid,
                    BroadcastState.FAILED,
                    self._clock.now(),
                    detail=f"{type(exc).__name__}: {exc}",
                )
            except Exception:
                log.exception("could not mark broadcast %d failed", bid)

    async def _render_and_air(
        self,
        bid: int,
        ebm: str,
        draft: MessageDraft,
        targets: Sequence[TerminalRef],
        *,
        already_on_air: bool = False,
    ) -> None:
        title, text = self._script(draft)
        repeats = self._repeats_for(draft.severity)
        audio: AudioRef | None = None
        if draft.audio_digest and self._live is not None:
            # Operator-supplied recording: played as supplied, between the chimes, instead of TTS.
            prog = await self._live.start_recording(ebm, draft.audio_digest, expires_at=draft.end_at)
            self._spawn(self._record_audio(bid, ebm, prog))
        elif draft.audio_digest:
            audio = AudioRef(draft.audio_digest, "mp3", 0.0, engine="upload")
            await store.set_audio(self._engine, bid, audio)
        elif self._live is None:
            rendered = await self._renderer.render(title, text, repeats=repeats)
            await store.set_audio(self._engine, bid, rendered.ref)
            audio = rendered.ref
        else:
            # Tone first: terminals get the attention chime at once; the speech follows in the same
            # stream when rendered. TTS time never delays the first sound.
            prog = await self._live.start(ebm, title, text, repeats=repeats, expires_at=draft.end_at)
            self._spawn(self._record_audio(bid, ebm, prog))
        if not already_on_air:
            await store.transition(self._engine, bid, BroadcastState.BROADCASTING, self._clock.now())
        await self._dispatch(bid, ebm, draft, targets, audio)

    async def _record_audio(self, bid: int, ebm: str, prog: LiveProgramme) -> None:
        try:
            ref = await prog.result()
        except PlayoutError as exc:
            # Terminals played the chime and the spoken fallback notice; say so in the history.
            log.error("broadcast %d (%s): speech could not be produced: %s", bid, ebm, exc)
            await store.note_event(self._engine, bid, self._clock.now(), detail=f"语音合成失败：{exc}")
            return
        await store.set_audio(self._engine, bid, ref)

    def _order(self, ebm: str, draft: MessageDraft, audio: AudioRef | None) -> DeliveryOrder:
        url = (
            f"{self.audio_base_url}/audio/{audio.digest}.{audio.format}"
            if audio is not None
            else f"{self.audio_base_url}/audio/live/{ebm}.mp3"
        )
        return DeliveryOrder(
            ebm_id=ebm,
            msg_type=draft.msg_type,
            severity=draft.severity,
            event_type=draft.event_type,
            priority=draft.priority,
            start_at=draft.start_at,
            end_at=draft.end_at,
            title=draft.primary.title,
            audio_url=url,
            audio=audio,
            volume=draft.volume if draft.volume is not None else 100,
        )

    async def _dispatch(
        self, bid: int, ebm: str, draft: MessageDraft, targets: Sequence[TerminalRef], audio: AudioRef | None
    ) -> None:
        await self._dispatcher.dispatch(bid, self._order(ebm, draft, audio), targets)
        if self._receipts.unsettled(bid) == 0:
            await self.on_settled(bid)

    async def on_settled(self, broadcast_id: int) -> None:
        """Every delivery settled: the broadcast is complete."""
        row = await store.get_broadcast(self._engine, broadcast_id)
        if row is None or row["state"] != str(BroadcastState.BROADCASTING):
            return
        await store.transition(self._engine, broadcast_id, BroadcastState.COMPLETED, self._clock.now())
        log.info("broadcast %d (%s) completed", broadcast_id, row["ebm_id"])

    async def stop(self, broadcast_id: int, *, actor: str = "") -> int:
        row = await store.get_broadcast(self._engine, broadcast_id)
        if row is None:
            raise KeyError(broadcast_id)
        state = BroadcastState(row["state"])
        if state in (
            BroadcastState.CANCELLED,
            BroadcastState.REJECTED,
            BroadcastState.FAILED,
            BroadcastState.EXPIRED,
        ):
            return 0
        await store.transition(
            self._engine, broadcast_id, BroadcastState.CANCELLED, self._clock.now(), actor=actor
        )
        was_live = self._dispatcher.is_live(row["ebm_id"])
        sent = await self._dispatcher.stop(row["ebm_id"])
        if not was_live:
            # Not on air (held, pending, still rendering): settle what is queued so nothing starts later.
            await store.cancel_queued(self._engine, broadcast_id, self._clock.now(), "已停止播发")
        return sent

    async def resume(self) -> int:
        """After a restart: put unfinished broadcasts back on air without replaying what was played."""
        resumed = 0
        for row in await store.unfinished_broadcasts(self._engine):
            bid, ebm = int(row["id"]), str(row["ebm_id"])
            draft = store.record_to_draft(json.loads(row["message_json"]))
            if row["end_at"] <= self._clock.now():
                await store.transition(self._engine, bid, BroadcastState.EXPIRED, self._clock.now())
                continue
            targets = self.resolve(draft)
            if row["state"] == str(BroadcastState.BROADCASTING) and row["audio_digest"]:
                audio = AudioRef(row["audio_digest"], row["audio_format"], row["audio_duration_s"] or 0.0)
                await self._dispatch(bid, ebm, draft, targets, audio)
            elif row["state"] == str(BroadcastState.RECEIVED):
                if row["policy_state"] in ("held", "pending_approval"):
                    # Decided to wait for an operator just before the restart: it waits still.
                    await self.hold(bid, detail="重启后恢复等待状态")
                    continue
                self._spawn(self._run(bid, ebm, draft, targets))
            else:
                on_air = row["state"] == str(BroadcastState.BROADCASTING)
                self._spawn(self._render_and_air(bid, ebm, draft, targets, already_on_air=on_air))
            resumed += 1
            log.info("broadcast %d (%s) resumed after restart", bid, ebm)
        return resumed

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
