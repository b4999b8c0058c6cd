"""The flow of one broadcast after the desk's decision: broadcast row → audio → dispatch → completion.

Owns the broadcast lifecycle transitions the system drives (record, hold and refuse on the desk's
word, render, broadcast, stop, complete). Before a broadcast goes on air it publishes
``BroadcastAiring`` and waits for the subscribers (the desk stops what it supersedes); it completes on
``BroadcastSettled``. Never parses input formats, never decides policy and never talks to a concrete
adapter.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broadcast.audio.playout import LiveProgramme, LiveProgrammes, PlayoutError
from broadcast.clock import BEIJING, Clock
from broadcast.events import BroadcastAiring, BroadcastSettled, Events
from broadcast.lifecycle import TransitionError
from broadcast.model import AudioRef, BroadcastState, DeliveryOrder, MessageDraft, Severity, TerminalRef
from broadcast.pipeline.orders import delivery_order
from broadcast.pipeline.script import Script, plain_script
from broadcast.store import broadcasts as store
from broadcast.store.broadcasts import PolicyColumns
from terminals.inventory_model import Inventory

log = logging.getLogger(__name__)


class Rendered(Protocol):
    @property
    def ref(self) -> AudioRef: ...


class Renderer(Protocol):
    async def render(self, title: str, text: str, *, repeats: int = 1) -> Rendered: ...


class Dispatching(Protocol):
    """The dispatch stage as the pipeline uses it."""

    async def dispatch(self, broadcast_id: int, order: DeliveryOrder, targets: Sequence[TerminalRef]) -> None: ...

    def is_live(self, ebm_id: str) -> bool: ...

    def halt(self, ebm_id: str) -> list[TerminalRef]: ...

    async def send_stops(self, ebm_id: str, terminals: Sequence[TerminalRef]) -> int: ...


class Settlement(Protocol):
    """The receipt book as the pipeline uses it."""

    def unsettled(self, broadcast_id: int) -> int: ...

    async def flush(self, *, also: Callable[[AsyncConnection], Awaitable[None]] | None = None) -> None: ...


REPEATS_BY_SEVERITY = {Severity.RED: 3, Severity.ORANGE: 2}

_FINAL = (BroadcastState.CANCELLED, BroadcastState.REJECTED, BroadcastState.FAILED, BroadcastState.EXPIRED)


@dataclass(frozen=True)
class Recorded:
    """A broadcast stored with one queued delivery per target; nothing has gone out yet."""

    broadcast_id: int
    ebm_id: str
    targets: tuple[TerminalRef, ...]


class Pipeline:
    def __init__(
        self,
        engine: AsyncEngine,
        inventory: Inventory,
        renderer: Renderer,
        dispatcher: Dispatching,
        receipts: Settlement,
        clock: Clock,
        events: Events,
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
        self._events = events
        self._audio_base_url = audio_base_url.rstrip("/")
        self.script = script  # read by the drill pre-render, which speaks exactly what the slot will
        self._live = live
        self._repeats_for = repeats_for
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, draft: MessageDraft, *, actor: str = "", received_at: datetime | None = None) -> Recorded:
        """Record a routine message (drill, programme: no desk in between) and put it on air in the
        background. Returns once it is durable. Raises UnknownAreaError for unknown areas."""
        rec = await self.record(draft, actor=actor, received_at=received_at)
        self.air(rec.broadcast_id, rec.ebm_id, draft, rec.targets)
        return rec

    async def record(
        self,
        draft: MessageDraft,
        targets: Sequence[TerminalRef] | None = None,
        *,
        actor: str = "",
        received_at: datetime | None = None,
        policy: PolicyColumns | None = None,
    ) -> Recorded:
        """Store the message (state received) with a queued delivery per target; nothing goes out.
        ``targets`` None: resolved from the inventory (raises UnknownAreaError for unknown areas)."""
        if targets is None:
            targets = self._inventory.targets(draft.area_codes, draft.terminal_codes)
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
        return Recorded(bid, ebm, tuple(targets))

    def air(
        self, broadcast_id: int, ebm_id: str, draft: MessageDraft, targets: Sequence[TerminalRef] | None = None
    ) -> None:
        """Put a recorded (or held, now released) message on air in the background; ``targets`` None
        means those recorded with it."""
        self._spawn(self._run(broadcast_id, ebm_id, draft, targets))

    def continue_airing(
        self, broadcast_id: int, ebm_id: str, draft: MessageDraft, targets: Sequence[TerminalRef], *, on_air: bool
    ) -> None:
        """After a restart: a broadcast that was rendering (or on air on the live stream) renders again
        and goes out, without repeating the transitions it already made."""
        self._spawn(self._render_and_air(broadcast_id, ebm_id, draft, targets, already_on_air=on_air))

    async def redispatch(
        self, broadcast_id: int, ebm_id: str, draft: MessageDraft, targets: Sequence[TerminalRef], audio: AudioRef
    ) -> None:
        """After a restart: a broadcast on air with finished audio goes on to its unsettled terminals."""
        await self._dispatch(broadcast_id, ebm_id, draft, targets, audio)

    async def targets_of(self, broadcast_id: int) -> tuple[TerminalRef, ...]:
        """The terminals recorded with a broadcast (its delivery rows), as the inventory knows them."""
        refs = (self._inventory.terminal(str(r["terminal_code"])) for r in await store.delivery_rows(self._engine, broadcast_id))
        return tuple(sorted((t for t in refs if t is not None), key=lambda t: t.resource_code))

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
        await store.finish_unaired(self._engine, broadcast_id, state, self._clock.now(), actor=actor, detail=detail)

    @property
    def audio_base_url(self) -> str:
        """Where terminals fetch this controller's audio (fixed once the web socket is bound)."""
        return self._audio_base_url

    @property
    def in_flight(self) -> int:
        """Broadcasts being put on air (or their audio recorded) in the background right now."""
        return len(self._tasks)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(
        self, bid: int, ebm: str, draft: MessageDraft, targets: Sequence[TerminalRef] | None
    ) -> None:
        try:
            await store.transition(self._engine, bid, BroadcastState.RENDERING, self._clock.now())
            await self._events.publish(BroadcastAiring(bid))
            if targets is None:
                targets = await self.targets_of(bid)
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
        title, text = self.script(draft)
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

    async def _dispatch(
        self, bid: int, ebm: str, draft: MessageDraft, targets: Sequence[TerminalRef], audio: AudioRef | None
    ) -> None:
        order = delivery_order(ebm, draft, audio, base_url=self.audio_base_url)
        await self._dispatcher.dispatch(bid, order, targets)
        if self._receipts.unsettled(bid) == 0:
            await self.complete(BroadcastSettled(bid))

    async def complete(self, event: BroadcastSettled) -> None:
        """Every delivery settled: the broadcast is complete."""
        row = await store.get_broadcast(self._engine, event.broadcast_id)
        if row is None or row["state"] != str(BroadcastState.BROADCASTING):
            return
        await store.transition(self._engine, event.broadcast_id, BroadcastState.COMPLETED, self._clock.now())
        log.info("broadcast %d (%s) completed", event.broadcast_id, row["ebm_id"])

    async def stop(self, broadcast_id: int, *, actor: str = "") -> int:
        """Cancel a broadcast: its state and every delivery's settle in ONE transaction (no reader sees a
        cancelled broadcast still playing, nor the reverse), then the terminals are told to stop.
        Returns how many stop instructions went out."""
        row = await store.get_broadcast(self._engine, broadcast_id)
        if row is None:
            raise KeyError(broadcast_id)
        if BroadcastState(row["state"]) in _FINAL:
            return 0
        ebm, now = str(row["ebm_id"]), self._clock.now()
        live = self._dispatcher.is_live(ebm)
        playing = self._dispatcher.halt(ebm) if live else []

        async def cancel(conn: AsyncConnection) -> None:
            await store.transition_in(conn, broadcast_id, BroadcastState.CANCELLED, now, actor=actor)
            if not live:
                # Not on air (held, pending, still rendering): settle what is queued so nothing starts later.
                await store.cancel_queued_in(conn, broadcast_id, now, "已停止播发")

        await self._receipts.flush(also=cancel)
        return await self._dispatcher.send_stops(ebm, playing)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
