"""Burn one core for argv[1] seconds (wrapper CPU metrics test)."""
import sys
import time

end = time.monotonic() + float(sys.argv[1])
print("BURNING", flush=True)
while time.monotonic() < end:
    pass
