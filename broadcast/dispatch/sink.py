"""The core's ``AdapterSink`` (上报入口): where every adapter report enters the core.

A delivery report goes to the receipt book, except a device's report that it was cut off by a
higher-ranked item, which the dispatcher has already queued to resume (it must not settle the
delivery); a link report goes to the link tracker, whose ``LinkChanged`` event brings parked
deliveries back when a terminal reconnects; a heartbeat refreshes last-seen. Owns that routing rule
and nothing else; never talks to adapters.
"""

from __future__ import annotations

import logging

from broadcast.dispatch.dispatcher import Dispatcher
from broadcast.dispatch.links import LinkTracker
from broadcast.dispatch.receipts import ReceiptBook
from broadcast.messages import DeliveryReport, HeartbeatReport, LinkReport, Report

log = logging.getLogger(__name__)


class CoreSink:
    def __init__(self, receipts: ReceiptBook, links: LinkTracker, dispatcher: Dispatcher) -> None:
        self._receipts = receipts
        self._links = links
        self._dispatcher = dispatcher

    def report(self, report: Report) -> None:
        if isinstance(report, DeliveryReport):
            self._delivery(report)
        elif isinstance(report, LinkReport):
            self._links.link(report.terminal_code, report.state, report.at, report.detail)
        elif isinstance(report, HeartbeatReport):
            self._links.heartbeat(report.terminal_code, report.at)
        else:  # a new report kind must be routed here, not dropped
            raise TypeError(f"unknown adapter report {report!r}")

    def _delivery(self, event: DeliveryReport) -> None:
        if self._dispatcher.is_interruption_report(event):
            log.debug(
                "EBM %s on %s interrupted by preemption: resumes later", event.ebm_id, event.terminal_code
            )
            return
        self._receipts.record(
            event.ebm_id,
            event.terminal_code,
            event.status,
            event.at,
            reason=event.reason,
            detail=event.detail,
        )
