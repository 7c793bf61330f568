"""The notifier interface. A failing notifier never changes the run's outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Notification", "Notifier", "notify_safely"]

log = logging.getLogger("playcount.notify")


@dataclass(frozen=True)
class Notification:
    """What every notifier sends: a subject line, the run summary and where the run's page is."""

    run_id: str
    status: str
    subject: str
    summary: dict[str, object] = field(default_factory=dict)
    report: str | None = None
    """The location of the run's HTML report (a local path or an `s3://` URL), if written."""


class Notifier(Protocol):
    def send(self, note: Notification) -> None: ...


def notify_safely(notifier: Notifier, note: Notification) -> bool:
    """Send, logging (never raising) a failure. Returns whether it was sent."""
    try:
        notifier.send(note)
    except Exception as e:  # noqa: BLE001 - a notifier must never hide the run's own outcome
        log.error("notification for run %s failed: %s", note.run_id, e)
        return False
    return True
