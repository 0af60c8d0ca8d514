"""Shared fixtures: isolated settings and stores, and the real data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cswb.settings import Settings, load_settings
from cswb.storage import AnalyticStore, open_analytic_store

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CSWB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose data folder and store live in this test's temporary folder."""
    return load_settings(data_dir=tmp_path / "var",
                         store_url=f"duckdb:///{(tmp_path / 'store').as_posix()}",
                         duckdb_memory_limit="1GB")


@pytest.fixture
def store(settings: Settings) -> AnalyticStore:
    """An empty analytic store for this test."""
    return open_analytic_store(settings.resolved_store_url, settings)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; tests using it are skipped with the reason when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real agency data not found at {SHARED_DATA} (set CSWB_SHARED_DATA); "
                    "it is present in CI")
    return SHARED_DATA
