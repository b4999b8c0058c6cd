"""Every table a running controller needs beyond the store's own: each feature owns its table and its
queries (Alertmanager's nflog/silences); the composition root names them all once, so the store
never imports a feature. Passed to ``broadcast.store.db.prepare_schema``.
"""

from __future__ import annotations

from sqlalchemy import Table

from broadcast.interconnect.media import submissions_table
from broadcast.interconnect.outbox import outbox_table
from broadcast.interconnect.upper import inbox_table
from broadcast.policy.records import intake_decisions
from broadcast.reports.store import reports
from broadcast.schedule.drill_service import drill_runs
from broadcast.schedule.programmes import media_programmes
from broadcast.security.accounts import accounts
from broadcast.security.audit import audit_ledger
from broadcast.security.sessions import account_sessions
from broadcast.security.tokens import api_tokens
from broadcast.sources.feeds.poller import feed_seen


def feature_tables() -> tuple[Table, ...]:
    return (
        intake_decisions,
        drill_runs,
        media_programmes,
        feed_seen,
        reports,
        inbox_table,
        outbox_table,
        submissions_table,
        accounts,
        account_sessions,
        api_tokens,
        audit_ledger,
    )
