"""What the front-end adapter remembers about each front-end it talks to and each terminal behind one.

Plain in-memory state; never does I/O and never talks to the sink.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from adapters.ip_speaker.link import Link
from adapters.ip_speaker.terminal_state import TerminalState


@dataclass(eq=False)
class FrontEndState:
    code: str
    terminals: dict[str, TerminalState] = field(default_factory=dict)
    link: Link | None = None
    last_seen: float = 0.0
    physical_address: str = ""

    @property
    def connected(self) -> bool:
        return self.link is not None and not self.link.closed


@dataclass
class Collector:
    """Replies to one relayed request, by target, until every target has been answered."""

    waiting: set[str]
    answers: dict[str, bytes] = field(default_factory=dict)

    def add(self, targets: tuple[str, ...], body: bytes) -> bool:
        """Record a response; returns True when every target is answered."""
        for code in targets or tuple(self.waiting):
            if code in self.waiting:
                self.waiting.discard(code)
                self.answers[code] = body
        return not self.waiting
