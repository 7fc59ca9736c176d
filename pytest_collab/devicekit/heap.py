"""Keep freed heap memory in a process that receives large tensors through gRPC.

Why: every gRPC message is a fresh allocation of about a chunk (1 MiB): on the
receiving side in gRPC's I/O threads and again as a Python bytes object, on the sending
side as the message and gRPC's copy of it. With glibc's defaults the heap tops those
free are handed back to the kernel at once, so the next message faults every page in
anew (measured: ~40 minor faults per received MiB, ~6 with the pad; a quarter of the
sending client's CPU went to page faults). A top pad keeps that much freed memory mapped
per arena, so messages reuse resident pages; the peak RSS does not grow (measured: 136 MB
with a 64 MiB pad, 144 MB without). Both device programs (``split_tail``,
``split_head``) take ``--heap-pad``. Standard library only.

Only glibc has ``mallopt(M_TOP_PAD)``; elsewhere (musl, macOS) this changes nothing and
says so. A ``MALLOC_TOP_PAD_`` or ``GLIBC_TUNABLES`` setting in the environment wins.
"""
from __future__ import annotations

import argparse
import ctypes
import os

M_TOP_PAD = -2  # glibc's malloc.h
DEFAULT_PAD_MIB = 64


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


def add_option(parser: argparse.ArgumentParser) -> None:
    """The ``--heap-pad MIB`` option both device programs share."""
    parser.add_argument("--heap-pad", type=int, default=DEFAULT_PAD_MIB, metavar="MIB",
                        help="freed heap kept mapped per arena, so gRPC messages reuse resident pages "
                             f"(default {DEFAULT_PAD_MIB}; 0 = glibc's default)")
