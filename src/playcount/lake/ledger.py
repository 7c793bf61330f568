"""The ledger: which stream files (by content fingerprint) are done. One object per file."""

from __future__ import annotations

import json

from playcount.lake.base import Storage
from playcount.lake.layout import Layout

__all__ = ["Ledger"]


class Ledger:
    """`_playcount/ledger/<fingerprint>.json`, written when a run finishes with that file.

    One small object per file keeps marking atomic on a folder and on S3 alike.
    """

    def __init__(self, storage: Storage, layout: Layout) -> None:
        self.storage = storage
        self.prefix = layout.ledger

    def _path(self, fingerprint: str) -> str:
        return f"{self.prefix}/{fingerprint}.json"

    def done(self) -> set[str]:
        return {f.name.removesuffix(".json") for f in self.storage.list(self.prefix)}

    def is_done(self, fingerprint: str) -> bool:
        return self.storage.exists(self._path(fingerprint))

    def mark_done(self, fingerprint: str, entry: dict[str, object]) -> None:
        self.storage.write_bytes(self._path(fingerprint), json.dumps(entry, indent=2).encode())
