"""gunicorn settings for the web process; gunicorn reads this file from its working directory.

The Procfile (`web:`), the Dockerfile's CMD and `dealkeeper run` all start gunicorn from the
repository root, so they all get these. Flags given on the command line win over them.
"""

from __future__ import annotations

import os

# gunicorn's own lines in dealkeeper's format (JSON off a terminal), LOG_LEVEL honoured.
logger_class = "service.gunicornlog.Logger"
accesslog = "-"

# Heroku stops a dyno with SIGTERM and kills it 30 s later; gunicorn lets requests in
# flight finish within this, well inside that window (and compose's stop_grace_period).
graceful_timeout = 20

# Worker heartbeats on tmpfs: on a container's overlay filesystem they can stall.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# Not set here on purpose: `bind` (gunicorn binds 0.0.0.0:$PORT itself when PORT is set) and
# `workers` (gunicorn reads WEB_CONCURRENCY itself; Heroku's Python buildpack sets it).

# gunicorn >= 25 opens a control socket in $HOME for `gunicornc`, which we do not use: two
# gunicorns on one machine would contend for it, and a container's home may be read-only.
control_socket_disable = True
