"""Fixtures for the UI tests: a filled cache, an empty one, a read-only session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tui_fixtures import WINDMILL_TOKEN_ENV, fill, open_context, pull_windmill, windmill_standin

from groupwarden.demo.windmill_server import WindmillStandIn
from groupwarden.services.context import Context


@pytest.fixture
def filled_db(tmp_path: Path) -> Path:
    db = tmp_path / "filled.db"
    ctx = open_context(db)
    fill(ctx)
    ctx.close()
    return db


@pytest.fixture
def tui_ctx(filled_db: Path) -> Iterator[Context]:
    ctx = open_context(filled_db)
    yield ctx
    ctx.close()


@pytest.fixture
def ro_ctx(filled_db: Path) -> Iterator[Context]:
    ctx = open_context(filled_db, read_only=True)
    yield ctx
    ctx.close()


@pytest.fixture
def empty_ctx(tmp_path: Path) -> Iterator[Context]:
    ctx = open_context(tmp_path / "empty.db")
    yield ctx
    ctx.close()


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[WindmillStandIn]:
    with windmill_standin() as server:
        monkeypatch.setenv(WINDMILL_TOKEN_ENV, server.superadmin_token)
        yield server


@pytest.fixture
def linked_ctx(filled_db: Path, standin: WindmillStandIn) -> Iterator[Context]:
    """The filled cache with a linked Windmill stand-in (corp-wm), served for the whole test."""
    ctx = open_context(filled_db)
    pull_windmill(ctx, standin)
    yield ctx
    ctx.close()
