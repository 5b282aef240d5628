"""The pure core: the event, the rule engine (rules/), and every decision made on them
(what to retry, what is still ours to write, whose turn it is, whether Close took a write,
what a Redis eviction policy means, what `dealkeeper status` shows).

No I/O here: no Redis, no HTTP, no files (but rules/'s loader reading a rules folder), and
no clock reads in the rule engine: the time comes in with the event. It imports only itself
and service.config; everything else builds on it. Its tests need no fakes.
"""
