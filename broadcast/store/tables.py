"""Table definitions (SQLAlchemy Core). History tables are append-only: rows are inserted, never updated.

Owns the schema and its version; must never hold business rules.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

SCHEMA_VERSION = 1


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns aware UTC (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_info = Table(
    "schema_info",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

areas = Table(
    "areas",
    metadata,
    Column("code", String(12), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("level", String(16), nullable=False),
    Column("parent", String(12), nullable=True),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
)

terminals = Table(
    "terminals",
    metadata,
    Column("resource_code", String(23), primary_key=True),
    Column("area_code", String(12), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("physical_address", String(64), nullable=False, unique=True),
    Column("adapter", String(32), nullable=False),
    Column("front_end", String(23), nullable=False, default=""),
    Column("latitude", Float, nullable=False),
    Column("longitude", Float, nullable=False),
    Column("link_state", String(16), nullable=False, default="offline"),
    Column("link_changed_at", UtcDateTime, nullable=True),
    Column("last_seen", UtcDateTime, nullable=True),
)

link_events = Table(
    "link_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("terminal_code", String(23), nullable=False, index=True),
    Column("state", String(16), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", Text, nullable=False, default=""),
)

ebm_sequences = Table(
    "ebm_sequences",
    metadata,
    Column("day", String(8), primary_key=True),
    Column("last", Integer, nullable=False),
)

broadcasts = Table(
    "broadcasts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ebm_id", String(35), nullable=False, unique=True),
    Column("source_key", String(400), nullable=False, unique=True),
    Column("source_kind", String(16), nullable=False),
    Column("msg_type", Integer, nullable=False),
    Column("event_type", String(5), nullable=False),
    Column("severity", Integer, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("sender_name", String(200), nullable=False),
    Column("sender_code", String(64), nullable=False),
    Column("related_ebm_id", String(35), nullable=True),
    Column("title", Text, nullable=False),
    Column("message_json", Text, nullable=False),
    Column("area_codes", Text, nullable=False),
    Column("sent_at", UtcDateTime, nullable=False),
    Column("start_at", UtcDateTime, nullable=False),
    Column("end_at", UtcDateTime, nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("state", String(24), nullable=False),
    Column("state_changed_at", UtcDateTime, nullable=False),
    Column("audio_digest", String(64), nullable=True),
    Column("audio_format", String(8), nullable=True),
    Column("audio_duration_s", Float, nullable=True),
    Column("audio_engine", String(64), nullable=True),
    # Intake policy (broadcast.desk): how the message was admitted, so a restart restores it.
    Column("policy_state", String(24), nullable=False, default=""),
    Column("hold_until", UtcDateTime, nullable=True),
    Column("hold_on_timeout", String(16), nullable=True),
    Column("composer", String(100), nullable=False, default=""),
    Column("supersedes", Text, nullable=False, default=""),  # source keys it stops when on air
    Column("exercise", Integer, nullable=False, default=0),
)

broadcast_events = Table(
    "broadcast_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("broadcast_id", Integer, ForeignKey("broadcasts.id"), nullable=False, index=True),
    Column("state", String(24), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("broadcast_id", Integer, ForeignKey("broadcasts.id"), nullable=False),
    Column("terminal_code", String(23), nullable=False),
    Column("area_code", String(12), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("detail", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("acknowledged_at", UtcDateTime, nullable=True),
    Column("playing_at", UtcDateTime, nullable=True),
    Column("played_at", UtcDateTime, nullable=True),
    UniqueConstraint("broadcast_id", "terminal_code", name="uq_delivery"),
)

delivery_events = Table(
    "delivery_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(32), nullable=True),
    Column("detail", Text, nullable=False, default=""),
    Column("at", UtcDateTime, nullable=False),
)

Index("ix_delivery_events_delivery", delivery_events.c.delivery_id)
Index("ix_deliveries_broadcast", deliveries.c.broadcast_id, deliveries.c.status)


# The tables this package owns; features define theirs on the same metadata and own them.
STORE_TABLES = frozenset(
    {
        "schema_info",
        "areas",
        "terminals",
        "link_events",
        "ebm_sequences",
        "broadcasts",
        "broadcast_events",
        "deliveries",
        "delivery_events",
    }
)
