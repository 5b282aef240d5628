"""Observability: JSON logs with secrets scrubbed (logs.py), gunicorn's logger in the same
format (gunicornlog.py), and the Prometheus text of `/metrics` (metrics.py).

It reads counters through service.adapters and imports core and config; intake,
processing and commands import it, never the other way round.
"""
