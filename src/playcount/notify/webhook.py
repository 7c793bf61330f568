"""The `webhook` notifier: a JSON POST that Slack (and most chat tools) accept (SPEC §7).

The body has Slack's `text` plus `run_id`, `status` and `summary` for other receivers.
Transient failures (network errors, timeouts, HTTP 429 and 5xx) are retried with backoff;
other HTTP errors are not. The HTTP call is passed in (default: urllib, no extra needed).
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from playcount.errors import PlaycountError
from playcount.notify.base import Notification

__all__ = ["WebhookNotifier", "Post", "urllib_post", "slack_text"]

log = logging.getLogger("playcount.notify")

Post = Callable[[str, bytes, dict[str, str], float], int]
"""(url, body, headers, timeout) -> HTTP status; raises OSError on network failure."""


def urllib_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST with urllib; returns the status (also for HTTP errors)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a configured URL
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def slack_text(note: Notification) -> str:
    """The subject, then one line per summary entry that has a value, then the report's location."""
    icon = {"succeeded": ":white_check_mark:", "failed": ":x:"}.get(note.status, ":information_source:")
    lines = [f"{icon} *{note.subject}*"]
    for key, value in note.summary.items():
        if value in (None, [], {}, "") or key == "status":
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {v}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        lines.append(f"• {key.replace('_', ' ')}: {value}")
    if note.report:
        lines.append(f"• report: {note.report}")
    return "\n".join(lines)


def _redacted(url: str) -> str:
    """The URL without its path: webhook paths are secrets (Slack's carry the token)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.path not in ("", "/") else url


class WebhookNotifier:
    """POSTs the notification as JSON; `retries` further attempts after a transient failure."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        post: Post = urllib_post,
        backoff: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.post = post
        self.backoff = backoff
        self.sleep = sleep

    def send(self, note: Notification) -> None:
        body = json.dumps(
            {
                "text": slack_text(note),
                "run_id": note.run_id,
                "status": note.status,
                "summary": note.summary,
                "report": note.report,
            },
            default=str,
        ).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "playcount"}
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                status = self.post(self.url, body, headers, self.timeout)
            except OSError as e:  # refused, DNS, timeout (socket.timeout is an OSError)
                problem = f"{type(e).__name__}: {e}"
                log.warning("webhook attempt %d failed: %s", attempt + 1, problem)
                continue
            if 200 <= status < 300:
                return
            problem = f"HTTP {status}"
            if status != 429 and status < 500:
                break  # the receiver refuses this request: retrying will not help
            log.warning("webhook attempt %d failed: %s", attempt + 1, problem)
        raise PlaycountError(
            f"the webhook `{_redacted(self.url)}` did not accept the notification ({problem})",
            fix="check notify.url and that the receiver is up",
        )
