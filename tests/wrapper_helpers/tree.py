"""Spawn 4 sleeping children (the last one in a new session), print every pid, then sleep.

With --ignore-term the program and its children ignore SIGTERM (SIG_IGN survives exec).
"""
import os
import signal
import subprocess
import sys
import time

if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
kids = [subprocess.Popen(["sleep", "60"], start_new_session=(i == 3)) for i in range(4)]
print("PIDS", os.getpid(), *[k.pid for k in kids], flush=True)
time.sleep(60)
