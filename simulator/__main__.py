"""``python -m simulator`` is the ``croupier`` command."""

from .commands.cli import main

raise SystemExit(main())
