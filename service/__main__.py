"""`python -m service ...` is `dealkeeper ...`."""

from service.cli import main

main()
