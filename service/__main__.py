"""`python -m service ...` is `dealkeeper ...`."""

from service.commands.cli import main

main()
