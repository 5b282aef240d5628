"""Commands: the `dealkeeper` command line. cli.py is the entry point and its core
subcommands (`run`, `worker`, `validate`, `test`, `schema`, `send-test-event`, ...);
runner.py is `dealkeeper run`'s local stack; each other module is one group of subcommands
(catchup, failed, history, ops, replay, rules, sweep), registered by cli.py.

The top layer: it may import every other package of the service.
"""
