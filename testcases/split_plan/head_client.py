"""Head device program of split_plan: the device kit's generic head (see
``python -m collab_devicekit.split_head --help``); a file so ``collab.start`` can run it."""
import sys

from collab_devicekit.split_head import main

if __name__ == "__main__":
    sys.exit(main())
