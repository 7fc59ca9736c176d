"""Interleave numbered stdout/stderr lines, a non-UTF-8 line, a result line; exit 3."""
import sys

for i in range(50):
    sys.stdout.write("out %d\n" % i)
    sys.stderr.write("err %d\n" % i)
sys.stdout.flush()
sys.stdout.buffer.write(b"bad \xff\xfe bytes\n")
sys.stdout.buffer.write(b'COLLAB_RESULT {"acc": 0.91}\n')
sys.stdout.buffer.write(b"no newline at end")
sys.stdout.flush()
sys.exit(3)
