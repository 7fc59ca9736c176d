"""Tail device program of split_plan: the device kit's generic tail (see
``python -m collab_devicekit.split_tail --help``); a file so ``collab.start`` can run it."""
import sys

from collab_devicekit.split_tail import main

if __name__ == "__main__":
    sys.exit(main())
