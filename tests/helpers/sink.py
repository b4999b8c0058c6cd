"""A recording ``AdapterSink``: every report an adapter sends up, kept in order, with small views."""

from __future__ import annotations

from broadcast.messages import DeliveryReport, HeartbeatReport, LinkReport, Report
from broadcast.model import DeliveryStatus, LinkState


class RecordingSink:
    def __init__(self) -> None:
        self.reports: list[Report] = []

    def report(self, report: Report) -> None:
        self.reports.append(report)

    @property
    def events(self) -> list[DeliveryReport]:
        return [r for r in self.reports if isinstance(r, DeliveryReport)]

    @property
    def links(self) -> list[LinkReport]:
        return [r for r in self.reports if isinstance(r, LinkReport)]

    @property
    def heartbeats(self) -> list[str]:
        return [r.terminal_code for r in self.reports if isinstance(r, HeartbeatReport)]

    @property
    def online(self) -> set[str]:
        """Terminals whose latest link report says online."""
        latest: dict[str, LinkState] = {}
        for r in self.links:
            latest[r.terminal_code] = r.state
        return {code for code, state in latest.items() if state is LinkState.ONLINE}

    def statuses(self, ebm_id: str, code: str | None = None) -> list[DeliveryStatus]:
        return [e.status for e in self.events if e.ebm_id == ebm_id and (code is None or e.terminal_code == code)]

    def link_states(self, code: str) -> list[LinkState]:
        return [r.state for r in self.links if r.terminal_code == code]
