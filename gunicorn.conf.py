"""gunicorn settings for the web process; gunicorn reads this file from its working directory.

The Procfile (`web:`), the Dockerfile's CMD and `dealkeeper run` all start gunicorn from the
repository root, so they all get these. Flags given on the command line win over them.
"""

from __future__ import annotations

import os

# gunicorn's own lines in dealkeeper's format (JSON off a terminal), LOG_LEVEL honoured.
logger_class = "service.observability.gunicornlog.Logger"
accesslog = "-"

# gevent workers: each connection is a greenlet, so a client that sends its headers and then
# stalls (or trickles them) holds a socket, not one of the few processes. With gunicorn's
# sync workers two such clients stopped every delivery for 30 s. A request's line and
# headers must arrive within `keepalive` seconds (gunicorn's gevent worker bounds them so),
# its body within WEBHOOK_BODY_READ_SEC (service/intake/app.py answers 408); `worker_connections`
# caps the connections one process holds. The work per request is a few milliseconds of
# CPU and one Redis round trip, which gevent interleaves well.
worker_class = "gevent"
worker_connections = 1000
keepalive = 5

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
