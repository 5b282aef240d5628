"""Editing a rule file the way a person does, for the tests of hot reload."""

from __future__ import annotations

import os
from pathlib import Path


def write(path: Path, text: str, *, tick: int) -> None:
    """Write the file with a modification time of its own, as a later edit would have."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(tick * 10**9, tick * 10**9))
