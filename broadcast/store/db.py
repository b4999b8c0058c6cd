"""Engine creation and schema setup. Owns connection settings and schema versioning; never holds
queries of the domain and never imports a feature: the tables features own are passed in."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from broadcast.store.tables import SCHEMA_VERSION, STORE_TABLES, metadata, schema_info

log = logging.getLogger(__name__)


class SchemaTooNewError(RuntimeError):
    pass


def make_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite") and ":memory:" not in url:
        # SQLite allows one writer; a single pooled connection serialises all access in this
        # process, so a read that upgrades to a write can never hit "database is locked".
        kwargs["connect_args"] = {"timeout": 30}
        kwargs["pool_size"] = 1
        kwargs["max_overflow"] = 0
        kwargs["pool_timeout"] = 60
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    return engine


# Migrations from version N to N+1, applied in order on start. Each takes a sync connection.
MIGRATIONS: dict[int, Any] = {}


async def prepare_schema(engine: AsyncEngine, feature_tables: Sequence[Table] = ()) -> int:
    """Create missing tables (the store's own and ``feature_tables``) and run pending migrations;
    return the schema version now in force."""
    own = [t for t in metadata.sorted_tables if t.name in STORE_TABLES]
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: metadata.create_all(c, tables=[*own, *feature_tables]))
        row = (await conn.execute(select(schema_info.c.version).where(schema_info.c.id == 1))).first()
        if row is None:
            await conn.execute(insert(schema_info).values(id=1, version=SCHEMA_VERSION))
            return SCHEMA_VERSION
        version = int(row[0])
        if version > SCHEMA_VERSION:
            raise SchemaTooNewError(
                f"database schema version {version} is newer than this program ({SCHEMA_VERSION}); "
                "upgrade the program or point it at another database"
            )
        while version < SCHEMA_VERSION:
            await conn.run_sync(MIGRATIONS[version])
            version += 1
            await conn.execute(schema_info.update().where(schema_info.c.id == 1).values(version=version))
            log.info("database schema migrated to version %d", version)
        return version
