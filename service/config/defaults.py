"""Tunable defaults, in one place, each with its unit in the name."""

from __future__ import annotations

# Webhook intake
MAX_WEBHOOK_BYTES = 1024 * 1024
# A delivery's body must have arrived this long after its headers, or it is answered 408
# and the connection closed: Close sends a few kilobytes at once, and a client that sends
# headers and then stalls must not hold a connection of the intake.
WEBHOOK_BODY_READ_SEC = 5.0
# Close retries a failed delivery for 72 hours; a redelivery inside that window must not
# be queued again, so the dedupe record outlives it by a day.
DEDUPE_TTL_SEC = 4 * 24 * 3600
# How old a webhook's signature may be (CLOSE_WEBHOOK_TOLERANCE). Close retries for 72
# hours and does not document that a retry is signed afresh, so a retry may carry the first
# attempt's timestamp: the window covers the 72 hours and half a day of slack in Close's
# schedule. It must stay inside the dedupe record's life, which is what makes a replayed
# delivery harmless (answered `duplicate`, nothing written).
WEBHOOK_TOLERANCE_SEC = 3 * 24 * 3600 + 12 * 3600

# Queue
QUEUE_NAME = "dealkeeper"
JOB_TIMEOUT_SEC = 60
# A worker that dies mid-job leaves the job "started"; RQ's maintenance (run by any live
# worker every MAINTENANCE_INTERVAL_SEC, and between blocking waits of WORKER_TTL_SEC - 15)
# retries it once its heartbeat (job timeout + HEARTBEAT_MARGIN_SEC) has expired.
WORKER_TTL_SEC = 60
MAINTENANCE_INTERVAL_SEC = 30
# Worker processes per `dealkeeper worker` (a dyno, a container). Each waits on Close's
# round trips one event at a time; more of them keep up with Close's rate limit.
WORKER_PROCESSES = 1
WORKER_PROCESSES_MAX = 32
HEARTBEAT_MARGIN_SEC = 10
# A running job's started entry and its opportunity lock are renewed every second by the
# worker's housekeeping thread (service/adapters/housekeeping.py) and lapse this long after
# the last renewal: a killed worker's event is taken back by another within about that.
JOB_KEEPALIVE_TTL_SEC = 8
# The process that moves due scheduled jobs (retries) to the queue holds RQ's scheduler
# lock this long past its last renewal; should it die, another takes over within that.
SCHEDULER_LOCK_TTL_SEC = 10
MAINTENANCE_LOCK_TTL_SEC = 60
# A finished event's outcome is in its history (service/adapters/history.py): RQ keeps
# nothing of a successful job (0 makes RQ delete it at once). Kept an hour, its hash and
# result stream were 6.8 KB an event, 32 MB for the last hour at 100,000 events a day.
JOB_RESULT_TTL_SEC = 0
JOB_FAILURE_TTL_SEC = 30 * 24 * 3600
# Except the jobs `dealkeeper sweep` queues and waits for: it tallies how they ended from
# their results, so they are kept a day (a sweep queues at most its deals, once a run).
SWEEP_COMMAND_RESULT_TTL_SEC = 24 * 3600
# Parked events kept at most (oldest dropped past it, with a WARNING `parked_dropped` and
# dealkeeper_jobs_parked_dropped_total): about 3 KB each (`python3 dev.py bench redis`), so
# a full store is 3 MB. A thousand parked events is a cause to fix, not a backlog to read.
PARKED_MAX = 1_000
# The part of a parked event's traceback kept (the last frame and the exception, which for
# Close's refusals is Close's answer with its field errors), in characters.
PARKED_REASON_MAX_CHARS = 2_000
# Transient failures (5xx, timeouts, Redis blips) come back after these waits, then park.
JOB_RETRY_INTERVALS_SEC = (5, 15, 30, 60, 120, 300, 600, 1200)
# A job asks RQ to run it again later (rate limit, busy opportunity) at most this often.
JOB_MAX_RESCHEDULES = 50

# Per-opportunity serialisation
OPPORTUNITY_LOCK_WAIT_SEC = 5.0
OPPORTUNITY_BUSY_RETRY_SEC = 2

# Own writes: how long the echo of a write may take to come back (only that long can its
# receipt teach us our key's id), and how long the receipt is kept for the stale-write check
# (a newer event of the deal can come in that late: Close retries a delivery for 72 hours).
WRITE_ECHO_WINDOW_SEC = 15 * 60
WRITE_RECEIPT_TTL_SEC = DEDUPE_TTL_SEC

# Rules: how often a process looks for edited rule files.
RULES_CHECK_INTERVAL_SEC = 2.0

# Redis client
REDIS_WEB_SOCKET_TIMEOUT_SEC = 2.0
# A web process serves many requests at once (gevent), but shares this many Redis
# connections among them, waiting REDIS_WEB_SOCKET_TIMEOUT_SEC for a free one (then 503):
# a burst of deliveries must not open a connection each (Heroku Redis mini allows 20).
REDIS_WEB_MAX_CONNECTIONS = 4
REDIS_HEALTH_CHECK_INTERVAL_SEC = 30

# Close's event log, read for what webhooks did not bring
CATCHUP_INTERVAL_SEC = 300
CATCHUP_OVERLAP_SEC = 300  # Close: re-read the last 5 minutes on every poll
CATCHUP_FIRST_LOOKBACK_SEC = 3600

# Loop guard: more writes than this of one field of one opportunity in an hour is a loop.
LOOP_MAX_WRITES_PER_FIELD_PER_HOUR = 10

# Close client
CLOSE_CONNECT_TIMEOUT_SEC = 3.05
CLOSE_READ_TIMEOUT_SEC = 10.0
CLOSE_MAX_ATTEMPTS = 4
MAX_INLINE_RETRY_WAIT_SEC = 5.0
CLOSE_RATE_LIMIT_PER_SEC = 15.0
METADATA_TTL_SEC = 300.0

# Local runs
LOCAL_DATA_DIR = ".dealkeeper"
