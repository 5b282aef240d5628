"""The rules in force for one process: loaded from disk, reloaded when the files change.

A file with a mistake is rejected as a whole and the last good rules keep running.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from service.config.errors import InvalidRulesError
from service.core.rules import RuleSet, load_rules_path

log = logging.getLogger("dealkeeper.rules")
Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(path: Path) -> Fingerprint:
    """Names, sizes and modification times of the rule files: cheap to take every few seconds."""
    if not path.exists():
        return ()
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
    else:
        candidates = [path]
    found = []
    for candidate in candidates:
        try:
            info = candidate.stat()
        except OSError:
            continue
        found.append((candidate.name, info.st_mtime_ns, info.st_size))
    return tuple(found)


class RulesHolder:
    """The last good RuleSet, refreshed at most every `check_interval_sec`."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_interval_sec: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_interval_sec = check_interval_sec
        self.clock = clock
        self.ruleset: RuleSet | None = None
        self.rejection: InvalidRulesError | None = None
        self._seen: Fingerprint | None = None
        self._checked_at = float("-inf")
        self.refresh()

    @property
    def is_ready(self) -> bool:
        return self.ruleset is not None

    @property
    def problems(self) -> list[str]:
        """The mistakes of the last rejected version, if the files hold one now."""
        return [str(p) for p in self.rejection.problems] if self.rejection else []

    def current(self) -> RuleSet:
        """The rules in force; InvalidRulesError when no good rules were ever loaded."""
        if self.clock() - self._checked_at >= self.check_interval_sec:
            self.refresh()
        if self.ruleset is None:
            assert self.rejection is not None  # refresh() leaves one or the other
            raise self.rejection
        return self.ruleset

    def refresh(self) -> None:
        """Reload when the files changed since the last look."""
        self._checked_at = self.clock()
        seen = fingerprint(self.path)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            loaded = load_rules_path(self.path)
        except InvalidRulesError as error:
            self.rejection = error
            log.error(
                "rules_rejected",
                extra={"path": str(self.path), "problems": self.problems, "kept": self._digest()},
            )
            return
        if self.ruleset is None or loaded.digest != self.ruleset.digest:
            log.info(
                "rules_loaded",
                extra={"path": str(self.path), "rules": len(loaded.rules), "digest": loaded.digest},
            )
        self.ruleset, self.rejection = loaded, None

    def _digest(self) -> str | None:
        return self.ruleset.digest if self.ruleset else None
