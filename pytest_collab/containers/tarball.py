"""In-memory tar archives, the one format docker takes files in (build contexts, put_archive)."""
from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping


def tar_bytes(files: Mapping[str, tuple[bytes, int]], *, mtime: int = 0) -> bytes:
    """An uncompressed tar of ``path -> (data, mode)``, in sorted order with a fixed mtime
    (docker's build cache keys on both)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(files):
            data, mode = files[path]
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), mode, mtime
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()
