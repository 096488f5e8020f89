"""`python -m mmljax` is the `mmljax` command."""

from .cli import main

raise SystemExit(main())
