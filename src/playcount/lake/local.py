"""A lake root on the local file system, and its run lock (`flock`)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from playcount.errors import ArchiveConflictError, LockedError
from playcount.lake.base import FileInfo

__all__ = ["LocalStorage", "RunLock"]


class LocalStorage:
    """A lake root on the local file system. Writes are atomic (temp file + rename)."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root).expanduser().resolve()
        self.root = str(self.path)

    def _p(self, path: str) -> Path:
        return self.path / path

    def uri(self, path: str) -> str:
        return str(self._p(path))

    def prepare(self, path: str) -> str:
        p = self._p(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        return str(p)

    def list(self, prefix: str, *, problems: bool = False) -> list[FileInfo]:
        """Regular files, and symlinks to regular files inside the root. A symlink out of the
        root, to nothing, or to a folder is never followed (SPEC §5): with `problems` it is listed
        with what is wrong with it."""
        base = self._p(prefix)
        if not base.is_dir() or base.is_symlink() and not self._inside(base):
            return []
        out = []
        for folder, dirs, files in os.walk(base):  # never into a symlinked folder
            linked = [d for d in dirs if os.path.islink(os.path.join(folder, d))]
            for name in sorted([*files, *linked]):
                if name.startswith("."):
                    continue
                p = Path(folder, name)
                rel = p.relative_to(self.path).as_posix()
                problem = self._link_problem(p) if p.is_symlink() else None
                if problem is None and p.is_file():
                    st = p.stat()
                    out.append(FileInfo(rel, st.st_size, st.st_mtime))
                    continue
                if problem is None and not p.is_dir():
                    problem = "not a regular file (a pipe, socket or device): never read"
                if problem is not None and problems:
                    out.append(FileInfo(rel, 0, None, problem))
        return sorted(out, key=lambda f: f.path)

    def _inside(self, p: Path) -> bool:
        return p.resolve().is_relative_to(self.path)

    def _link_problem(self, p: Path) -> str | None:
        """What stops a symlink from being read, or None when it leads to a file in the root."""
        target = os.readlink(p)
        if not p.exists():
            return f"a symlink to `{target}`, which does not exist"
        if not self._inside(p):
            return f"a symlink to `{target}`, outside the lake root: never followed"
        if not p.is_file():
            return f"a symlink to `{target}`, which is not a file"
        return None

    def signature(self, path: str) -> str:
        st = self._p(path).stat()
        return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}"

    def open(self, path: str) -> IO[bytes]:
        return self._p(path).open("rb")

    def read_bytes(self, path: str) -> bytes:
        return self._p(path).read_bytes()

    def write_bytes(self, path: str, data: bytes) -> None:
        p = self._p(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, p)

    def append_bytes(self, path: str, data: bytes) -> None:
        p = self._p(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("ab") as f:
            f.write(data)

    def exists(self, path: str) -> bool:
        p = self._p(path)
        return p.exists() or p.is_symlink()  # a dangling symlink is there too (it can be moved)

    def fingerprint(self, path: str) -> str:
        h = hashlib.sha256()
        p = self._p(path)
        if p.is_symlink() and self._link_problem(p):  # never read: the link itself names it
            h.update(b"symlink:" + os.readlink(p).encode("utf-8", "surrogateescape"))
            return h.hexdigest()[:32]
        if not p.is_file():  # a pipe or device: opening it could block forever
            st = p.stat()
            h.update(f"special:{st.st_mode}:{st.st_ino}:{st.st_dev}".encode())
            return h.hexdigest()[:32]
        with p.open("rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
        return h.hexdigest()[:32]

    def move(self, src: str, dst: str) -> None:
        s, d = self._p(src), self._p(dst)
        if d.exists():
            if self.fingerprint(src) != self.fingerprint(dst):
                raise ArchiveConflictError(
                    f"cannot move `{src}` to `{dst}`: a different file is already there",
                    fix="rename one of them; playcount never overwrites an archived file",
                )
            s.unlink()
            return
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(s, d)

    def delete(self, path: str) -> None:
        p = self._p(path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)

    def lock(self, path: str, run_id: str) -> AbstractContextManager[Any]:
        """An OS file lock (`flock`), released by the kernel when the process dies."""
        return RunLock(self._p(path), run_id)


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

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self._f is not None:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)
            self._f.close()
            self._f = None
