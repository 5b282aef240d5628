"""Intake: the web process. The Flask app (app.py: `POST /webhooks/close`, `/healthz`,
`/readyz`, `/metrics`), the webhook signature check (signatures.py), the bound on untrusted
JSON (jsonbody.py) and the budget that mutes logging of refused requests (budget.py).

It queues events through service.adapters and never processes them: it imports adapters,
observability, core and config, never processing or commands.
"""
