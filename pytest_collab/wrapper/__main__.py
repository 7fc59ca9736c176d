"""``python -m pytest_collab.wrapper`` (or ``python3 -m collab_wrapper`` on a device)."""
import sys

from .cli import main

sys.exit(main())
