"""The boundary between the upper-platform receiver and the county core, and the upward packet maker
(上级平台接入的核心边界与上行打包).

Owns `CountyFacade` (what the receiver may ask of the core), `UpperRefusal` (the core's refusal, carrying a
ResultCode), `UpperPeer`, `Outgoing`, `PacketMaker` (signs and packs what we send upward) and `UpwardQueue`
(queues them in the outbox).

Must never handle received packets or own the inbox table (that is `broadcast.interconnect.upper`), talk HTTP
itself, or edit the core's state except through the facade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from broadcast.clock import Clock
from broadcast.interconnect.ebd.ids import EbdIdAllocator
from broadcast.interconnect.ebd.model import EBD, Body, ConnectionCheck, EBDHeader, ResultCode
from broadcast.interconnect.ebd.package import pack_ebdt
from broadcast.interconnect.ebd.signing import Signer
from broadcast.interconnect.ebd.xml_build import build_ebd
from broadcast.interconnect.outbox import Outbox, PayloadKind
from broadcast.interconnect.snapshot import BroadcastSnapshot, TerminalStatus
from broadcast.model import MessageDraft
from terminals.inventory_model import Inventory

# ---- the boundary with the county core ----------------------------------------------------------


class UpperRefusal(Exception):
    """Raised by the facade when it will not take an upper message; becomes the EBDResponse."""

    def __init__(self, code: ResultCode, desc: str) -> None:
        self.code = code
        self.desc = desc
        super().__init__(f"ResultCode {int(code)}: {desc}")


class CountyFacade(Protocol):
    """What the interconnect needs from the county core (implemented by `facade.ControllerFacade`).

    Ids: `ebm_id` arguments and `BroadcastSnapshot.ebm_id` are the county's own broadcast ids (the second item
    returned by submit_upper); the interconnect keeps the map to the upper platform's EBMID itself.
    """

    @property
    def platform_code(self) -> str:
        """Our 23-digit EBRID."""

    @property
    def platform_name(self) -> str: ...

    async def submit_upper(self, draft: MessageDraft) -> tuple[int, str]:
        """Record and start an upper message; (broadcast id, county ebm id). Raises UpperRefusal (or any
        exception, answered with ResultCode 5) when refused. Must be idempotent by draft.source.key."""

    async def cancel_by_ebm(self, ebm_id: str) -> bool:
        """Stop the broadcast with this county ebm id; False when there is none."""

    async def broadcast_state(self, ebm_id: str) -> BroadcastSnapshot | None: ...

    async def broadcasts_changed_since(self, since: datetime) -> Sequence[BroadcastSnapshot]:
        """Broadcasts (any source) whose state changed at or after `since`."""

    async def broadcasts_between(
        self, start: datetime | None, end: datetime | None
    ) -> Sequence[BroadcastSnapshot]:
        """Broadcasts that started in the window (for EBMBrdLog)."""

    def inventory(self) -> Inventory: ...

    def inventory_changed_at(self) -> datetime:
        """When the inventory was last loaded with changes (for Incremental info reports)."""

    async def terminal_states(self) -> Mapping[str, TerminalStatus]:
        """Link state of every terminal by resource code, with when it last changed."""


@dataclass(frozen=True)
class UpperPeer:
    """A configured upper platform: its EBRID, the URL we POST to, its name for logs."""

    ebrid: str
    url: str
    name: str = ""


# ---- what we send -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    ebd: EBD
    ebdb: bytes
    tar: bytes

    @property
    def ebd_id(self) -> str:
        return self.ebd.ebd_id


class PacketMaker:
    """Builds, signs and packs our packets; every one carries SRC/URL = our callback URL when configured."""

    def __init__(
        self,
        platform_code: str,
        signer: Signer,
        ids: EbdIdAllocator,
        clock: Clock,
        *,
        callback_url: str | None = None,
    ) -> None:
        self.platform_code = platform_code
        self._signer = signer
        self.ids = ids
        self._clock = clock
        self.callback_url = callback_url

    def make(self, body: Body, dest_ebrid: str, *, related: str | None = None) -> Outgoing:
        ebd_id = self.ids.heartbeat_id() if isinstance(body, ConnectionCheck) else self.ids.next_id()
        header = EBDHeader(
            ebd_id,
            self.platform_code,
            dest_ebrid,
            self._clock.now(),
            src_url=self.callback_url,
            related_ebd_id=related,
        )
        ebd = EBD(header, body)
        ebdb = build_ebd(ebd)
        tar = pack_ebdt(
            ebd_id, ebdb, self._signer.sign_xml(ebdb, ebd_id), mtime=int(self._clock.now().timestamp())
        )
        return Outgoing(ebd, ebdb, tar)


class UpwardQueue:
    """Queues packets for upper platforms in the outbox under a logical key (each report at most once)."""

    def __init__(self, maker: PacketMaker, outbox: Outbox) -> None:
        self.maker = maker
        self.outbox = outbox

    async def queue(
        self, key: str, body: Body, *, dest_ebrid: str, url: str, related: str | None = None
    ) -> bool:
        if await self.outbox.has_key(key):
            return False
        out = self.maker.make(body, dest_ebrid, related=related)
        return await self.outbox.enqueue(
            key,
            message_id=out.ebd_id,
            dest_url=url,
            payload=out.tar,
            kind=PayloadKind.EBD,
            dest_id=dest_ebrid,
            label=out.ebd.ebd_type.value,
        )
