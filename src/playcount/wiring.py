"""From settings to the things a run talks to: the AWS client factory, the KPI store, the notifier.

The only place that reads the `store`, `notify` and `aws` settings; stores and notifiers get
their clients from here (STYLE rule 6).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playcount.aws import Aws
from playcount.errors import SettingsError
from playcount.notify import LogNotifier, Notifier, SnsNotifier, WebhookNotifier
from playcount.settings import (
    DuckDBStoreSettings,
    DynamoDBStoreSettings,
    LogNotifySettings,
    MemoryStoreSettings,
    Settings,
    SnsNotifySettings,
    WebhookNotifySettings,
)
from playcount.stores import DuckDBStore, DynamoDBStore, FaultyStore, KpiStore, MemoryStore

__all__ = ["open_aws", "open_store", "open_notifier"]


def open_aws(settings: Settings) -> Aws:
    """The AWS client factory of the `aws` settings (no AWS call is made until a client is used)."""
    a = settings.aws
    return Aws(region=a.region, endpoint_url=a.endpoint_url, profile=a.profile)


def open_store(settings: Settings, aws: Aws) -> KpiStore:
    """The KPI store named by `store.type`."""
    s = settings.store
    if isinstance(s, MemoryStoreSettings):
        return FaultyStore(s.fail_first) if s.fail_first else MemoryStore()
    if isinstance(s, DynamoDBStoreSettings):
        client = aws.client("dynamodb", region=s.region, endpoint_url=s.endpoint_url)
        return DynamoDBStore(client, table_prefix=s.table_prefix)
    assert isinstance(s, DuckDBStoreSettings)
    if settings.root.startswith("s3://") and not s.path:
        raise SettingsError(
            f"the lake root `{settings.root}` is on S3, so the DuckDB KPI store needs a local `store.path`",
            fix="set store.path (PLAYCOUNT_STORE__PATH) to a local file, or use --store dynamodb",
        )
    if s.path:
        path = Path(s.path).expanduser()
        if path.is_dir():
            raise SettingsError(
                f"store.path `{s.path}` is a folder", fix="name a file in it, e.g. `kpis.duckdb`", key="store.path"
            )
        if not path.parent.is_dir():
            raise SettingsError(
                f"store.path `{s.path}` is in a folder that does not exist (`{path.parent}`)",
                fix="create the folder, or correct store.path (PLAYCOUNT_STORE__PATH)",
                key="store.path",
            )
    return DuckDBStore(settings.store_path())


def open_notifier(settings: Settings, aws: Aws, append: Callable[[bytes], None] | None) -> Notifier:
    """The notifier named by `notify.type`. `append`: how the `log` notifier adds a JSON line, if anywhere."""
    n = settings.notify
    if isinstance(n, SnsNotifySettings):
        region = n.region or n.topic_arn.split(":")[3] or None
        return SnsNotifier(aws.client("sns", region=region, endpoint_url=n.endpoint_url), n.topic_arn)
    if isinstance(n, WebhookNotifySettings):
        return WebhookNotifier(n.url, timeout=n.timeout, retries=n.retries)
    assert isinstance(n, LogNotifySettings)
    return LogNotifier(append)
