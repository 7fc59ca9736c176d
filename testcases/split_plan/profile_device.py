"""Profiling program of split_plan: the device kit's one-pass profiler (see
``python -m collab_devicekit.split_profile --help``); a file so ``collab.start`` can run it."""
import sys

from collab_devicekit.split_profile import main

if __name__ == "__main__":
    sys.exit(main())
