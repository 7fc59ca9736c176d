"""Burn one core for argv[1] seconds, then print what it got: ``SELF <cpu_s> <wall_s>``.

The self-measured share lets the test tell the wrapper's error from a busy machine.
"""
import sys
import time

print("BURNING", flush=True)
wall0, cpu0 = time.monotonic(), time.process_time()
end = wall0 + float(sys.argv[1])
while time.monotonic() < end:
    pass
print("SELF %.4f %.4f" % (time.process_time() - cpu0, time.monotonic() - wall0), flush=True)
