"""The default notifier: a log line, and one JSON line in `_playcount/notifications.jsonl`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from playcount.notify.base import Notification

__all__ = ["LogNotifier"]

log = logging.getLogger("playcount.notify")


class LogNotifier:
    """Logs the subject and appends the notification to a JSON lines file (if given)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None

    def send(self, note: Notification) -> None:
        level = logging.ERROR if note.status == "failed" else logging.INFO
        log.log(level, "%s", note.subject)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = {"run_id": note.run_id, "status": note.status, "subject": note.subject, **note.summary}
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(line, default=str) + "\n")
