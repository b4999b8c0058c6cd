"""Fixtures for report tests: a fresh SQLite database with the full schema and the default county."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.store.db import make_engine, prepare_schema
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'reports.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    yield eng
    await eng.dispose()


@pytest.fixture
def inventory() -> Inventory:
    return default_inventory()
