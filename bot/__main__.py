"""``python -m bot`` is the ``deskbell`` command."""

from bot.cli import main

main()
