"""The ops console: `/console/`, server-rendered pages over what dealkeeper keeps in Redis.

Mounted by service/web.py (app.py), off unless DEALKEEPER_CONSOLE_PASSWORD is set. auth.py
holds passwords, sessions, CSRF and the login throttle; context.py the per-process state;
pages/ one module per page; charts.py draws inline SVG. It imports processing, adapters,
authoring, observability, core and config, never intake or commands.
"""
