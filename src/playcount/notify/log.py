"""The default notifier: a log line, and one JSON line in `_playcount/notifications.jsonl`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from playcount.notify.base import Notification

__all__ = ["LogNotifier"]

log = logging.getLogger("playcount.notify")


class LogNotifier:
    """Logs the subject and appends the notification as one JSON line through `append` (if given:
    the lake's `_playcount/notifications.jsonl`, local or on S3)."""

    def __init__(self, append: Callable[[bytes], None] | None = None) -> None:
        self.append = append

    def send(self, note: Notification) -> None:
        level = logging.ERROR if note.status == "failed" else logging.INFO
        log.log(level, "%s%s", note.subject, f" (report: {note.report})" if note.report else "")
        if self.append is not None:
            line = {"run_id": note.run_id, "status": note.status, "subject": note.subject, **note.summary}
            if note.report:
                line["report"] = note.report
            self.append((json.dumps(line, default=str) + "\n").encode("utf-8"))
