"""One run at a time per root: an OS file lock, released by the OS when the process dies."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from types import TracebackType
from typing import IO

from playcount.errors import LockedError

__all__ = ["RunLock"]


class RunLock:
    """`flock` on `<root>/_playcount/lock`: a SIGKILLed run never blocks the next one."""

    def __init__(self, path: str | Path, run_id: str) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._f: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        f = self.path.open("a+")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            f.seek(0)
            holder = f.read().strip() or "another run"
            f.close()
            raise LockedError(
                f"the lake root is locked by {holder} (`{self.path}`)",
                fix="wait for that run to finish; the lock is released when its process ends",
            ) from e
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"run_id": self.run_id, "pid": os.getpid()}))
        f.flush()
        self._f = f
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._f is not None:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
            self._f.close()
            self._f = None
