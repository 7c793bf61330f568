"""Notifiers: tell people how a run went (SPEC §7)."""

from playcount.notify.base import Notification, Notifier, notify_safely
from playcount.notify.log import LogNotifier

__all__ = ["Notification", "Notifier", "LogNotifier", "notify_safely"]
