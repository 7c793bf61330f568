"""Notifiers: tell people how a run went (SPEC §7)."""

from playcount.notify.base import Notification, Notifier, notify_safely
from playcount.notify.log import LogNotifier
from playcount.notify.sns import SnsNotifier
from playcount.notify.webhook import WebhookNotifier

__all__ = ["Notification", "Notifier", "LogNotifier", "SnsNotifier", "WebhookNotifier", "notify_safely"]
