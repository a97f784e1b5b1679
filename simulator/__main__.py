"""``python -m simulator`` is the ``croupier`` command."""

from .cli import main

raise SystemExit(main())
