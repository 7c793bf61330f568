"""The lake: its layout, its storage (a local folder or an S3 prefix), the ledger, the lock.

`open_storage` is the only place that chooses a storage; `lake.local` and `lake.s3` import
`lake.base` only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from playcount.errors import MissingExtraError
from playcount.lake.base import FileInfo, Storage
from playcount.lake.layout import Layout
from playcount.lake.ledger import Ledger
from playcount.lake.local import LocalStorage, RunLock

if TYPE_CHECKING:
    from playcount.aws import Aws

__all__ = ["Layout", "Ledger", "RunLock", "FileInfo", "LocalStorage", "Storage", "open_storage"]


def open_storage(root: str, *, aws: Aws | None = None, lease_seconds: float = 900.0) -> Storage:
    """The storage for a root: a folder, or (with the `s3` extra) an `s3://bucket/prefix`.

    `aws` makes the S3 client (default: the standard AWS credential chain).
    """
    if root.startswith("s3://"):
        from playcount.aws import Aws
        from playcount.lake.s3 import S3Storage

        try:
            client = (aws or Aws()).client("s3")
        except MissingExtraError as e:
            raise MissingExtraError("boto3", "s3") from e
        return S3Storage(root, client, lease_seconds=lease_seconds)
    return LocalStorage(root)
