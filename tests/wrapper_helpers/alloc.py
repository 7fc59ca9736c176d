"""Allocate and touch argv[1] MiB, say READY, then hold it for argv[2] seconds."""
import sys
import time

size = int(sys.argv[1]) << 20
block = bytearray(size)
for i in range(0, size, 4096):  # touch every page so it is resident
    block[i] = 1
print("READY", flush=True)
time.sleep(float(sys.argv[2]))
