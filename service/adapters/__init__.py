"""Adapters: everything that talks to the world outside the process. Close's HTTP API
(transport.py, replies.py, close.py, ratelimit.py, metadata.py, eventlog.py, ...), Redis
(queue.py, history.py, locks.py, stats.py, snapshot.py, housekeeping.py, ...), RQ's worker
class (steadyworker.py, workerclass.py), rule files on disk (rulefiles.py) and the embedded
Redis server (embedded.py).

Thin: each turns the outside into the core's data and back. It imports core and config
only, never intake, processing, observability or commands.
"""
