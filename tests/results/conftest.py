"""Fixtures of the results tests: batches on a simulator of their own (see tests/support)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.batch import MakeBatch, batch_factory


@pytest.fixture
def make_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeBatch]:
    yield from batch_factory(tmp_path, monkeypatch)
