"""Fixtures for the contract tests: Close's published JSON, and a client for the fake."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakeclose import FakeClose
from service.adapters.close import CloseClient

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def load_fixture(name: str) -> Any:
    """One file of tests/contract/fixtures/, parsed."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


@pytest.fixture
def fixture() -> Callable[[str], Any]:
    """load_fixture, for tests that take fixtures by name."""
    return load_fixture


@pytest.fixture
def client(fake_close: FakeClose) -> Iterator[CloseClient]:
    """A real CloseClient for the fake, with waits not slept (a 429 test must not sleep)."""
    with CloseClient(
        FakeClose.DEFAULT_API_KEY,
        base_url=fake_close.url,
        sleep=lambda _sec: None,
        rand=lambda: 0.5,
        max_attempts=1,
        connect_timeout_sec=1.0,
        read_timeout_sec=5.0,  # generous: CI shares two cores
    ) as close_client:
        yield close_client
