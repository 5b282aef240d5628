"""Processing: the worker process. One event's job (jobs.py, ended by finish.py, with the
collaborators of context.py), catch-up from Close's event log (catchup.py), scheduled
sweeps (sweeps/), the RQ worker that runs them (worker.py) and the supervisor of
`--processes N` (pool.py).

It joins the pure core to the adapters: it imports adapters, authoring, observability, core
and config, never intake or commands.
"""
