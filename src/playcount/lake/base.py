"""What a lake root is to the pipeline: the `Storage` protocol and the `FileInfo` it lists.

Implementations: `lake.local` (a folder, with its `flock`) and `lake.s3` (a bucket prefix, with
its lease); `playcount.lake.open_storage` chooses one."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    pass

__all__ = ["FileInfo", "Storage"]


@dataclass(frozen=True)
class FileInfo:
    """One object under the root: its relative path and size."""

    path: str
    size: int
    modified: float | None = None
    """When it last changed (seconds since the epoch) where that can change under a run (local
    files); None where an object is complete once listed (S3)."""
    problem: str | None = None
    """Why it cannot be read although it is there (a symlink out of the root, or to nothing);
    listed only with `list(..., problems=True)`."""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


class Storage(Protocol):
    """What the pipeline needs from a lake root. Paths are relative, with `/`."""

    root: str

    def uri(self, path: str) -> str:
        """What the engine reads or writes for `path` (a local path or an `s3://` URL)."""
        ...

    def prepare(self, path: str) -> str:
        """Make `path` writable by the engine (parent folders) and return its uri."""
        ...

    def list(self, prefix: str, *, problems: bool = False) -> list[FileInfo]:
        """Files under `prefix` (hidden ones left out), sorted by path; with `problems`, also
        entries that cannot be read (`FileInfo.problem`)."""
        ...

    def signature(self, path: str) -> str:
        """A cheap value that changes whenever the file's content does (size, modification
        time, inode locally; the ETag on S3): what a run re-checks to see a file change under it."""
        ...

    def open(self, path: str) -> IO[bytes]: ...

    def read_bytes(self, path: str) -> bytes: ...

    def write_bytes(self, path: str, data: bytes) -> None: ...

    def append_bytes(self, path: str, data: bytes) -> None:
        """Add `data` at the end of `path` (created if absent)."""
        ...

    def exists(self, path: str) -> bool: ...

    def fingerprint(self, path: str) -> str: ...

    def move(self, src: str, dst: str) -> None:
        """Move `src` to `dst`. An existing `dst` with the same content is kept; one with
        different content is never overwritten (raises)."""
        ...

    def delete(self, path: str) -> None: ...

    def lock(self, path: str, run_id: str) -> AbstractContextManager[Any]:
        """The run lock at `path`: one run at a time per root (raises `LockedError` if held)."""
        ...
