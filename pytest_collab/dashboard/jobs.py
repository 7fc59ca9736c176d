"""Long actions (``ensure``: build, push, pull) run on a thread; the page follows their progress.

A job keeps the progress lines its function reports (the same ``progress`` callback the
CLI prints with), its state and its result or error; ``GET /api/jobs/<id>`` returns
them from any line onward, so a page polls without getting a line twice.
"""
from __future__ import annotations

import itertools
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

from pytest_collab.errors import CollabError

KEEP = 50


@dataclass
class Job:
    id: str
    title: str
    state: str = "running"           # running | done | failed
    lines: list[str] = field(default_factory=list)
    result: Any = None
    error: str | None = None
    started: float = field(default_factory=time.time)
    ended: float | None = None

    def progress(self, line: str) -> None:
        self.lines.append(str(line))

    def view(self, since: int = 0) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "state": self.state, "lines": self.lines[since:],
                "next": len(self.lines), "result": self.result, "error": self.error,
                "started": self.started, "ended": self.ended}


class Jobs:
    """The dashboard's jobs, newest last; only the last :data:`KEEP` are remembered."""

    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, title: str, fn: Callable[[Callable[[str], None]], Any]) -> Job:
        """Run ``fn(progress)`` on a thread; its return value becomes the job's result."""
        with self._lock:
            job = Job(str(next(self._ids)), title)
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP]:
                del self._jobs[old]

        def run() -> None:
            try:
                job.result = fn(job.progress)
                job.state = "done"
            except CollabError as exc:
                job.error, job.state = str(exc), "failed"
            except Exception as exc:  # noqa: BLE001  (shown on the page, never a traceback there)
                job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"
                traceback.print_exc()
            job.ended = time.time()

        threading.Thread(target=run, name=f"collab-job-{job.id}", daemon=True).start()
        return job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        return list(self._jobs.values())
