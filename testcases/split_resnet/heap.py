"""Keep freed heap memory in a process that receives large tensors through gRPC.

Why: every received gRPC message is a fresh allocation of about a chunk (1 MiB) in
gRPC's I/O threads and again as a Python bytes object. With glibc's defaults the heap
tops those free are handed back to the kernel at once, so the next message faults
every page in anew: on a 2-core machine that halves the tail server's receive rate
(benchmarks/bench_split_wire.py measures it with and without, side by side). A top pad
keeps that much freed memory mapped per arena, so messages reuse resident pages; the
peak RSS does not grow (measured: 136 MB with a 64 MiB pad, 144 MB without).

Only glibc has ``mallopt(M_TOP_PAD)``; elsewhere (musl, macOS) this changes nothing and
says so. A ``MALLOC_TOP_PAD_`` or ``GLIBC_TUNABLES`` setting in the environment wins.
"""
from __future__ import annotations

import ctypes
import os

M_TOP_PAD = -2  # glibc's malloc.h


def keep_freed_heap(pad_mib: int) -> str:
    """Set glibc's top pad to ``pad_mib`` MiB (0: leave glibc's default); return what was done."""
    if pad_mib <= 0:
        return "heap: glibc default (no top pad)"
    if "MALLOC_TOP_PAD_" in os.environ or "top_pad" in os.environ.get("GLIBC_TUNABLES", ""):
        return "heap: top pad left to the environment (MALLOC_TOP_PAD_ / GLIBC_TUNABLES)"
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return "heap: no glibc mallopt here, allocator unchanged"
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    if not mallopt(M_TOP_PAD, pad_mib << 20):
        return f"heap: mallopt refused a top pad of {pad_mib} MiB, allocator unchanged"
    return f"heap: glibc top pad {pad_mib} MiB"
