"""What the IP loudspeaker adapter remembers about one terminal it serves: its live link, last
contact, link state, and which broadcasts were sent to it (so reports can be checked against them).

Plain in-memory state; never does I/O and never talks to the sink.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from adapters.ip_speaker.link import Link
from broadcast.model import LinkState, TerminalRef

# Reports about older broadcasts than this many per terminal are treated as unknown.
DELIVERED_MEMORY = 256


@dataclass(eq=False)
class TerminalState:
    ref: TerminalRef
    link: Link | None = None
    last_seen: float = 0.0
    link_state: LinkState = LinkState.OFFLINE
    seen_online: bool = False
    delivered: OrderedDict[str, None] = field(default_factory=OrderedDict)
    stopped: set[str] = field(default_factory=set)
    lies_logged: set[str] = field(default_factory=set)

    @property
    def code(self) -> str:
        return self.ref.resource_code

    def remember_delivery(self, ebm_id: str) -> None:
        self.delivered[ebm_id] = None
        self.delivered.move_to_end(ebm_id)
        self.stopped.discard(ebm_id)
        while len(self.delivered) > DELIVERED_MEMORY:
            old, _ = self.delivered.popitem(last=False)
            self.stopped.discard(old)

    def was_delivered(self, ebm_id: str) -> bool:
        return ebm_id in self.delivered
