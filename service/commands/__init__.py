"""`dealkeeper` subcommands beyond the core ones in service/cli.py, one module per group.

Each module defines click commands; service/cli.py registers them with `cli.add_command`.
"""
