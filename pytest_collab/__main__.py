"""``python -m pytest_collab`` is the ``collab`` command."""
from pytest_collab.cli import main

raise SystemExit(main())
