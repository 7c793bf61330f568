"""The `sns` notifier: publish the run summary to a topic (SPEC §7).

Subscribers can filter on the message attributes `status` (`succeeded` | `failed` |
`nothing_to_do`) and `run_id`. The boto3 SNS client is passed in.
"""

from __future__ import annotations

import json
import re
from typing import Any

from playcount.notify.base import Notification

__all__ = ["SnsNotifier", "sns_subject"]

_NOT_ALLOWED = re.compile(r"[^\x20-\x7e]")  # SNS subjects: printable ASCII, no line breaks


def sns_subject(subject: str) -> str:
    """A subject SNS accepts: printable ASCII, at most 100 characters, not empty."""
    clean = _NOT_ALLOWED.sub("?", " ".join(subject.split())).strip()
    return (clean or "playcount run")[:100]


class SnsNotifier:
    """Publishes one message per run: subject line, JSON body with the run summary."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self.client = client
        self.topic_arn = topic_arn

    def send(self, note: Notification) -> None:
        body = {
            "subject": note.subject,
            "run_id": note.run_id,
            "status": note.status,
            "summary": note.summary,
            "report": note.report,
        }
        attributes = {
            "status": {"DataType": "String", "StringValue": note.status},
            "run_id": {"DataType": "String", "StringValue": note.run_id},
        }
        if note.report:
            attributes["report"] = {"DataType": "String", "StringValue": note.report}
        self.client.publish(
            TopicArn=self.topic_arn,
            Subject=sns_subject(note.subject),
            Message=json.dumps(body, indent=2, default=str),
            MessageAttributes=attributes,
        )
