"""Fixtures for operations tests: a fresh SQLite database with the full schema and the default county."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from broadcast.app.schema import feature_tables
from broadcast.store.db import make_engine, prepare_schema
from broadcast.store.inventory import sync_inventory
from terminals.inventory import default_inventory
from terminals.inventory_model import Inventory


@pytest.fixture
def inventory() -> Inventory:
    return default_inventory()


@pytest.fixture
async def engine(tmp_path: Path, inventory: Inventory) -> AsyncIterator[AsyncEngine]:
    eng = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'ops.sqlite3'}")
    await prepare_schema(eng, feature_tables())
    await sync_inventory(eng, inventory)
    yield eng
    await eng.dispose()
