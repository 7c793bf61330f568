"""The lake: its layout, its storage (a local folder; S3 plugs in beside it), the ledger, the lock."""

from playcount.lake.layout import Layout
from playcount.lake.ledger import Ledger
from playcount.lake.lock import RunLock
from playcount.lake.storage import FileInfo, LocalStorage, Storage, open_storage

__all__ = ["Layout", "Ledger", "RunLock", "FileInfo", "LocalStorage", "Storage", "open_storage"]
