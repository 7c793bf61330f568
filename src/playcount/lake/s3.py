"""A lake root on S3 (`s3://bucket/prefix`): the control plane through boto3.

DuckDB reads and writes the data files itself through httpfs (`uri()` gives it `s3://` URLs);
this class lists, fingerprints (ETag + size), moves (copy, verify, then delete) and holds the
run lease. The boto3 S3 client is passed in (`playcount.aws.Aws` makes it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
import socket
import threading
from types import TracebackType
from typing import IO, Any

from playcount.errors import ArchiveConflictError, LockedError, SettingsError, StorageError
from playcount.lake.base import FileInfo

__all__ = ["S3Storage", "S3Lease", "parse_s3_root"]

log = logging.getLogger("playcount.lake")

_MAX_COPY_OBJECT = 5 * 1024**3  # CopyObject's limit; larger objects take a multipart copy
_PRECONDITION = {"PreconditionFailed", "ConditionalRequestConflict"}


def parse_s3_root(root: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix/` -> (`bucket`, `some/prefix`)."""
    rest = root.removeprefix("s3://")
    bucket, _, prefix = rest.partition("/")
    if not root.startswith("s3://") or not bucket:
        raise SettingsError(f"`{root}` is not an S3 root", fix="write it as s3://bucket or s3://bucket/prefix")
    if "?" in rest:
        # DuckDB's httpfs reads what follows a `?` in an s3:// URL as its options: no escape exists
        raise SettingsError(
            f"the S3 root `{root}` has a `?`, which DuckDB cannot read in an s3:// path",
            fix="use a bucket prefix without `?`",
            key="root",
        )
    return bucket, prefix.strip("/")


def _code(e: Exception) -> str:
    response = getattr(e, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _status(e: Exception) -> int:
    response = getattr(e, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(e: Exception) -> bool:
    return _code(e) in {"404", "NoSuchKey", "NotFound"} or _status(e) == 404


class S3Storage:
    """Implements `playcount.lake.Storage` for an `s3://bucket/prefix` root.

    Objects are written whole (a PUT is atomic). `move` never deletes a source whose copy is
    not verified, and deletes it only if it is still the object that was copied.
    """

    def __init__(self, root: str, client: Any, *, lease_seconds: float = 900.0) -> None:
        self.bucket, self.prefix = parse_s3_root(root)
        self.root = f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"
        self.client = client
        self.lease_seconds = lease_seconds

    # -- paths ----------------------------------------------------------------------------------

    def key(self, path: str) -> str:
        path = path.strip("/")
        return f"{self.prefix}/{path}" if self.prefix else path

    def _rel(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def uri(self, path: str) -> str:
        return f"s3://{self.bucket}/{self.key(path)}"

    def prepare(self, path: str) -> str:
        return self.uri(path)  # S3 has no folders to make

    # -- reading --------------------------------------------------------------------------------

    def _objects(self, prefix: str) -> list[dict[str, Any]]:
        base = self.key(prefix)
        out: list[dict[str, Any]] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=f"{base}/" if base else ""):
            out.extend(page.get("Contents", []))
        return out

    def list(self, prefix: str, *, problems: bool = False) -> list[FileInfo]:
        out = []
        for obj in self._objects(prefix):
            key: str = obj["Key"]
            name = key.rsplit("/", 1)[-1]
            if key.endswith("/") or not name or name.startswith("."):
                continue  # folder markers from consoles, hidden files
            out.append(FileInfo(self._rel(key), int(obj["Size"])))
        return sorted(out, key=lambda f: f.path)

    def _head(self, path: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.client.head_object(Bucket=self.bucket, Key=self.key(path))
        except Exception as e:
            if _is_missing(e):
                return None
            raise
        return head

    def _get(self, path: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.key(path))
        except Exception as e:
            if _is_missing(e):
                raise FileNotFoundError(f"no object `{self.uri(path)}`") from e
            raise

    def open(self, path: str) -> IO[bytes]:
        """The object's bytes as a stream, read as they are needed (never the whole object)."""
        return io.BufferedReader(_Body(self._get(path)["Body"]), buffer_size=1 << 20)

    def read_bytes(self, path: str) -> bytes:
        with self.open(path) as body:
            return body.read()

    def exists(self, path: str) -> bool:
        return self._head(path) is not None

    def signature(self, path: str) -> str:
        """The fingerprint (ETag + size): an object changes only by a new PUT, which changes it."""
        return self.fingerprint(path)

    def fingerprint(self, path: str) -> str:
        """ETag + size, hashed to a name-safe 32 hex digits (SPEC §5)."""
        head = self._head(path)
        if head is None:
            raise FileNotFoundError(f"no object `{self.uri(path)}`")
        return _fingerprint(head)

    # -- writing --------------------------------------------------------------------------------

    def write_bytes(self, path: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=data)

    def append_bytes(self, path: str, data: bytes, *, attempts: int = 10) -> None:
        """S3 has no append: the object is read and written back whole, on the condition that it
        is still the object read (or still absent), so two writers never lose each other's
        lines; a writer that lost the race reads again."""
        for _ in range(attempts):
            try:
                got = self._get(path)
                old, condition = got["Body"].read(), {"IfMatch": got["ETag"]}
            except FileNotFoundError:
                old, condition = b"", {"IfNoneMatch": "*"}
            try:
                self.client.put_object(Bucket=self.bucket, Key=self.key(path), Body=old + data, **condition)
                return
            except Exception as e:
                if _code(e) not in _PRECONDITION and not _is_missing(e):
                    raise
        raise StorageError(
            f"`{self.uri(path)}` kept changing while {len(data)} bytes were appended ({attempts} attempts)",
            fix="check what else writes that object",
        )

    def delete(self, path: str) -> None:
        """Delete the object at `path`, or every object under it when it is a "folder"."""
        if self._head(path) is not None:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(path))
            return
        keys = [o["Key"] for o in self._objects(path)]
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in keys[i : i + 1000]], "Quiet": True},
            )

    def move(self, src: str, dst: str) -> None:
        """Copy, verify the copy, then delete the source (only if it is unchanged).

        An existing `dst` with the same content is kept (the source is then deleted); one with
        different content is never overwritten (raises). If the copy cannot be verified, the
        copy is removed and the source stays: nothing is lost, the next run retries.
        """
        source = self._head(src)
        if source is None:
            raise FileNotFoundError(f"no object `{self.uri(src)}` to move")
        existing = self._head(dst)
        if existing is not None:
            if not self._same_content(src, source, dst, existing):
                raise ArchiveConflictError(
                    f"cannot move `{self.uri(src)}` to `{self.uri(dst)}`: a different object is already there",
                    fix="rename one of them; playcount never overwrites an archived file",
                )
        else:
            self._copy(src, dst, source)
            copied = self._head(dst)
            if copied is None or not self._same_content(src, source, dst, copied):
                if copied is not None:
                    self.client.delete_object(Bucket=self.bucket, Key=self.key(dst), IfMatch=copied["ETag"])
                raise StorageError(
                    f"the copy of `{self.uri(src)}` to `{self.uri(dst)}` could not be verified "
                    f"(size or content differs); the source was kept",
                    fix="run again: the move is retried",
                )
        self._delete_if_unchanged(src, source)

    def _copy(self, src: str, dst: str, source: dict[str, Any]) -> None:
        copy_source = {"Bucket": self.bucket, "Key": self.key(src)}
        if int(source["ContentLength"]) <= _MAX_COPY_OBJECT:
            self.client.copy_object(
                Bucket=self.bucket,
                Key=self.key(dst),
                CopySource=copy_source,
                CopySourceIfMatch=source["ETag"],
            )
        else:
            self.client.copy(copy_source, self.bucket, self.key(dst))

    def _delete_if_unchanged(self, path: str, head: dict[str, Any]) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(path), IfMatch=head["ETag"])
        except Exception as e:
            if _code(e) in _PRECONDITION:
                log.warning("`%s` changed while it was being archived; the new object is kept", self.uri(path))
                return
            if _is_missing(e):
                return
            raise

    def _same_content(self, a: str, ha: dict[str, Any], b: str, hb: dict[str, Any]) -> bool:
        """Same size and, by ETag (single-part, unencrypted or SSE-S3) or by hashing both."""
        if int(ha["ContentLength"]) != int(hb["ContentLength"]):
            return False
        if ha["ETag"] == hb["ETag"] and "-" not in ha["ETag"]:
            return True
        return self._sha256(a) == self._sha256(b)

    def _sha256(self, path: str) -> str:
        h = hashlib.sha256()
        with self.open(path) as body:
            while chunk := body.read(1 << 22):
                h.update(chunk)
        return h.hexdigest()

    # -- the run lock ---------------------------------------------------------------------------

    def lock(self, path: str, run_id: str) -> S3Lease:
        """The run lease at `path` (see `S3Lease`)."""
        return S3Lease(self.client, self.bucket, self.key(path), run_id, ttl=self.lease_seconds)


class _Body(io.RawIOBase):
    """A botocore `StreamingBody` as a raw stream. The body closes itself once read to its end,
    after which a text reader over it would fail ("I/O operation on closed file"); this stream
    stays open until closed and reads as empty at the end."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._body.read(len(b))
        b[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._body.close()
        super().close()


def _fingerprint(head: dict[str, Any]) -> str:
    etag = str(head["ETag"]).strip('"')
    return hashlib.sha256(f"{etag}:{int(head['ContentLength'])}".encode()).hexdigest()[:32]


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


class S3Lease:
    """One run at a time on an S3 root: a lease object written with a conditional PUT.

    The object (`If-None-Match: *`) names its owner and lasts `ttl` seconds from its last
    write, judged by the S3 server's clock (its `Last-Modified` against the `Date` of our
    read), so a crashed run's lease lapses by itself. A live run renews it every `ttl / 3`
    (a PUT conditional on its own ETag). An expired lease is taken over by a PUT conditional
    on the expired lease's ETag, so of two runs racing for it exactly one wins. Release
    deletes the lease only if it is still ours.
    """

    def __init__(
        self, client: Any, bucket: str, key: str, run_id: str, *, ttl: float = 900.0, heartbeat: bool = True
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.run_id = run_id
        self.ttl = ttl
        self.heartbeat = heartbeat
        self.etag: str | None = None
        self.lost = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def _body(self) -> bytes:
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        return json.dumps(
            {
                "run_id": self.run_id,
                "owner": f"{socket.gethostname()}:{os.getpid()}",
                "acquired_at": now.isoformat(),
                "ttl_seconds": self.ttl,
                "expires_at": (now + dt.timedelta(seconds=self.ttl)).isoformat(),
            }
        ).encode()

    def _put(self, **condition: str) -> str:
        response = self.client.put_object(
            Bucket=self.bucket, Key=self.key, Body=self._body(), ContentType="application/json", **condition
        )
        return str(response["ETag"])

    def _current(self) -> tuple[dict[str, Any], str, bool] | None:
        """The lease there now: (its content, its ETag, whether it has expired), or None."""
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as e:
            if _is_missing(e):
                return None
            raise
        body = obj["Body"].read()
        try:
            holder: dict[str, Any] = json.loads(body)
        except ValueError:
            holder = {}
        ttl = float(holder.get("ttl_seconds", self.ttl))
        date = obj.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        from email.utils import parsedate_to_datetime

        server_now = _utc(parsedate_to_datetime(date)) if date else dt.datetime.now(dt.UTC)
        expired = server_now >= _utc(obj["LastModified"]) + dt.timedelta(seconds=ttl)
        return holder, str(obj["ETag"]), expired

    def acquire(self) -> S3Lease:
        """Take the lease, or raise `LockedError` naming the live holder."""
        for _ in range(3):
            try:
                self.etag = self._put(IfNoneMatch="*")
                return self
            except Exception as e:
                if _code(e) not in _PRECONDITION:
                    raise
            current = self._current()
            if current is None:
                continue  # released meanwhile: try again
            holder, etag, expired = current
            if not expired:
                raise LockedError(
                    f"the lake root is locked by run `{holder.get('run_id', '?')}` "
                    f"({holder.get('owner', '?')}, until about {holder.get('expires_at', '?')}) (`{self.uri}`)",
                    fix="wait for that run to finish; a crashed run's lease lapses at its expiry",
                    holder=holder,
                )
            try:
                self.etag = self._put(IfMatch=etag)
            except Exception as e:
                if _code(e) in _PRECONDITION or _is_missing(e):
                    continue  # someone else took it or released it: look again
                raise
            log.warning(
                "took over the expired lease of run %s (%s) on %s",
                holder.get("run_id", "?"),
                holder.get("owner", "?"),
                self.uri,
            )
            return self
        raise LockedError(
            f"could not take the lease `{self.uri}`: other runs keep racing for it",
            fix="retry in a moment",
        )

    def renew(self) -> bool:
        """Extend the lease; False (and `lost`) if it is no longer ours."""
        if self.etag is None:
            return False
        try:
            self.etag = self._put(IfMatch=self.etag)
            return True
        except Exception as e:
            if _code(e) in _PRECONDITION or _is_missing(e):
                self.lost = True
                log.error("run %s lost its lease on %s (it expired and was taken over)", self.run_id, self.uri)
                return False
            log.warning("could not renew the lease on %s: %s", self.uri, e)
            return True

    def release(self) -> None:
        """Delete the lease if it is still ours."""
        if self.etag is None:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as e:
            if _code(e) in _PRECONDITION:
                log.warning("the lease on %s was taken over by another run; left to it", self.uri)
            elif not _is_missing(e):
                raise
        finally:
            self.etag = None

    def _beat(self) -> None:
        interval = max(self.ttl / 3, 0.05)
        while not self._stop.wait(interval):
            if not self.renew():
                return

    def __enter__(self) -> S3Lease:
        self.acquire()
        if self.heartbeat:
            self._stop.clear()
            self._thread = threading.Thread(target=self._beat, name=f"lease-{self.run_id}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.release()
