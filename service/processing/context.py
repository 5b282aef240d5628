"""What a job works with: the collaborators a worker builds once (JobContext), and what a
finished job returns (Outcome).

Its own module so that the job (jobs.py) and its ending (finish.py) both read it without
importing each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis

from service.adapters.authfault import KeyGate
from service.adapters.close import CloseAPI
from service.adapters.housekeeping import InHand
from service.adapters.loopguard import LoopGuard
from service.adapters.metadata import MetadataCache
from service.adapters.organization import OrganizationWatch
from service.adapters.ownwrites import OwnWrites
from service.adapters.ratelimit import SharedRateLimiter
from service.adapters.rulefiles import RulesHolder
from service.adapters.stats import Stats
from service.adapters.unknownfields import UnknownFieldsWatch
from service.config import defaults
from service.core.events import Event
from service.core.rules import Plan

Outcome = dict[str, Any]


@dataclass
class JobContext:
    """Everything a job needs, built once per worker process."""

    rules: RulesHolder
    close: CloseAPI
    metadata: MetadataCache
    own_writes: OwnWrites
    connection: redis.Redis
    stats: Stats
    loop_guard: LoopGuard
    # The shared rate limiter the Close client paces with, so a job can take its requests'
    # slots ahead, with its other Redis reads (None: each request takes its own).
    throttle: SharedRateLimiter | None = None
    dry_run: bool = False  # plans are logged, nothing is written to Close
    # A worker's housekeeping renews the opportunity locks of its job (None: no worker;
    # a lock then lasts the job timeout).
    in_hand: InHand | None = None
    lock_wait_sec: float = defaults.OPPORTUNITY_LOCK_WAIT_SEC
    job_timeout_sec: int = defaults.JOB_TIMEOUT_SEC
    catchup_interval_sec: int = 0  # 0: no automatic catch-up from this process
    # The organization CLOSE_API_KEY belongs to, learnt by the worker's maintenance (None:
    # no key to ask with, or a context built by hand; events are then not checked).
    organization: OrganizationWatch | None = None
    # Tells Close refusing CLOSE_API_KEY from refusing one event, and pauses workers for
    # the first (None: no key, nothing to refuse).
    key_gate: KeyGate | None = None
    # Records the names rules use that Close no longer knows, when the rules or the
    # metadata change (None: no key, so no metadata to check them against).
    unknown_fields: UnknownFieldsWatch | None = None
    # Called with (event, plan or None, outcome) after every event.
    on_finish: list[Callable[[Event, Plan | None, Outcome], None]] = field(default_factory=list)
    # Called with (pipeline, event, plan or None, outcome) to add their writes (history) to
    # the job's final pipeline: one round trip for all of a job's bookkeeping.
    finish_writers: list[Callable[[Any, Event, Plan | None, Outcome], None]] = field(
        default_factory=list
    )
