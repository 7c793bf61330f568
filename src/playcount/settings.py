"""Typed, closed settings: `playcount.toml` < `PLAYCOUNT_*` environment < CLI flags.

Unknown keys are errors that name the key (a typo must not silently fall back to a default).
Nested settings use `__` in the environment: `PLAYCOUNT_STORE__PATH=/data/kpis.duckdb`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings import (
    SettingsError as PydanticSettingsError,
)

from playcount.errors import SettingsError

__all__ = [
    "Settings",
    "StoreSettings",
    "DuckDBStoreSettings",
    "DynamoDBStoreSettings",
    "MemoryStoreSettings",
    "NotifySettings",
    "LogNotifySettings",
    "SnsNotifySettings",
    "WebhookNotifySettings",
    "AwsSettings",
    "load_settings",
    "CONFIG_FILE",
]

CONFIG_FILE = "playcount.toml"
ENV_PREFIX = "PLAYCOUNT_"

#: What DuckDB's `memory_limit` takes: a size with a unit, or a share of the machine's memory.
_MEMORY = r"(?i)^\s*\d+(\.\d+)?\s*([KMGT]i?B|B|%)\s*$"
#: Folders of the lake that are not the stream landing zone (SPEC §4): a `streams_prefix` inside
#: one of them, or holding one, would take reference, archived or bookkeeping files as streams.
_LAKE_AREAS = (
    "raw_data/songs",
    "raw_data/users",
    "processed_data",
    "bad_rows",
    "rejected",
    "archived",
    "_playcount",
)


class DuckDBStoreSettings(BaseModel):
    """The KPI store `duckdb` (default): a DuckDB file, `<root>/kpis.duckdb` unless `path` is set."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["duckdb"] = "duckdb"
    path: str | None = None


class DynamoDBStoreSettings(BaseModel):
    """The KPI store `dynamodb`: tables `<table_prefix>genre_kpis`, `...top_songs`, `...top_genres`."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["dynamodb"] = "dynamodb"
    table_prefix: str = Field("playcount_", pattern=r"^[A-Za-z0-9_.-]*$")
    region: str | None = Field(None, description="default: aws.region")
    endpoint_url: str | None = Field(None, description="default: aws.endpoint_url")


def _type_or(default: str, implied: dict[str, str]) -> Callable[[Any], str | None]:
    """A discriminator reading `type`. Left out, it is the one a key implies (`topic_arn` ->
    `sns`, so `PLAYCOUNT_NOTIFY__TOPIC_ARN` alone is enough), else the default."""

    def tag(value: Any) -> str | None:
        if not isinstance(value, dict):
            return getattr(value, "type", None)
        if "type" in value:
            return str(value["type"])
        return next((t for key, t in implied.items() if key in value), default)

    return tag


class MemoryStoreSettings(BaseModel):
    """The KPI store `memory`: Arrow tables in the process, gone when it ends (tests, trials).

    `fail_first`: the first N writes fail with a transient `StoreError` (to try retries)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["memory"] = "memory"
    fail_first: int = Field(default=0, ge=0, le=1000)


StoreSettings = Annotated[
    Annotated[DuckDBStoreSettings, Tag("duckdb")]
    | Annotated[DynamoDBStoreSettings, Tag("dynamodb")]
    | Annotated[MemoryStoreSettings, Tag("memory")],
    Discriminator(
        _type_or("duckdb", {"table_prefix": "dynamodb", "fail_first": "memory"}),
        custom_error_type="store_type",
        custom_error_message="type must be duckdb, dynamodb or memory",
    ),
]


class _NotifyCommon(BaseModel):
    model_config = ConfigDict(extra="forbid")
    on_nothing_to_do: bool = Field(
        False, description="also notify runs that found nothing to do (a cron'd run would spam otherwise)"
    )


class LogNotifySettings(_NotifyCommon):
    """The notifier `log` (default): a log line plus `<root>/_playcount/notifications.jsonl`."""

    type: Literal["log"] = "log"


class SnsNotifySettings(_NotifyCommon):
    """The notifier `sns`: publish to a topic, with message attributes `status` and `run_id`."""

    type: Literal["sns"] = "sns"
    topic_arn: str = Field(pattern=r"^arn:aws[a-z-]*:sns:")
    region: str | None = Field(None, description="default: the topic ARN's region")
    endpoint_url: str | None = Field(None, description="default: aws.endpoint_url")


class WebhookNotifySettings(_NotifyCommon):
    """The notifier `webhook`: a JSON POST with a Slack-compatible `text`."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(pattern=r"^https?://")
    timeout: float = Field(10.0, gt=0, description="seconds per attempt")
    retries: int = Field(3, ge=0, description="further attempts after a failed one")


NotifySettings = Annotated[
    Annotated[LogNotifySettings, Tag("log")]
    | Annotated[SnsNotifySettings, Tag("sns")]
    | Annotated[WebhookNotifySettings, Tag("webhook")],
    Discriminator(
        _type_or("log", {"topic_arn": "sns", "url": "webhook"}),
        custom_error_type="notify_type",
        custom_error_message="type must be log, sns or webhook",
    ),
]


class AwsSettings(BaseModel):
    """AWS access for S3 roots, DynamoDB and SNS. Credentials come from the standard chain
    (profile, `AWS_*` environment, instance or task role); `AWS_ENDPOINT_URL` is honoured."""

    model_config = ConfigDict(extra="forbid")
    region: str | None = None
    endpoint_url: str | None = Field(None, description="an S3-compatible endpoint or a local emulator")
    profile: str | None = None
    lease_seconds: float = Field(
        900.0, gt=0, description="life of the run lease on an S3 root; a live run renews it every third"
    )


class Settings(BaseSettings):
    """Everything a run can be told. Defaults are SPEC's."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    root: str = Field(".", description="the lake root: a folder or s3://bucket/prefix")
    engine: Literal["duckdb", "spark"] = Field(
        "duckdb", description="`duckdb` (embedded) or `spark` (the `spark` extra; Glue, EMR, any cluster)"
    )
    spark_master: str | None = Field(
        None, description="Spark master of the session the `spark` engine starts; default `local[*]`"
    )
    spark_conf: dict[str, str] = Field(
        default_factory=dict, description="Spark settings of that session (`spark.driver.memory`, ...)"
    )
    streams_prefix: str = Field("raw_data/streams", description="landing prefix of stream files")
    settle_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="a local landing file modified this recently is waited for (it may still be written)",
    )
    max_bad_row_ratio: float = Field(0.10, ge=0.0, le=1.0)
    min_user_age: int = Field(13, ge=0, le=1000)
    max_user_age: int = Field(120, ge=1, le=1000)
    top_songs_n: int = Field(3, ge=1, le=1000)
    top_genres_n: int = Field(5, ge=1, le=1000)
    run_date: dt.date | None = Field(
        None,
        ge=dt.date(1970, 1, 1),
        le=dt.date(9998, 12, 31),
        description="the run's date: names the archive folder only; default: today UTC",
    )
    threads: int | None = Field(None, ge=1, le=1024, description="engine threads; default: all cores")
    memory_limit: str = Field(
        "1GB",
        description="DuckDB's memory limit (`1GB`, `512MiB`, `50%`); past it DuckDB spills to a temp folder",
    )
    store: StoreSettings = DuckDBStoreSettings()
    notify: NotifySettings = LogNotifySettings.model_validate({})
    aws: AwsSettings = AwsSettings.model_validate({})

    @field_validator("streams_prefix")
    @classmethod
    def _landing_prefix(cls, value: str) -> str:
        prefix = value.strip().strip("/")
        parts = prefix.split("/")
        if not prefix or any(p in ("", ".", "..") for p in parts):
            raise ValueError("must be a folder path under the root such as `raw_data/streams`, not empty or `/`")
        for area in _LAKE_AREAS:
            if prefix == area or prefix.startswith(area + "/") or area.startswith(prefix + "/"):
                raise ValueError(f"overlaps `{area}/`, which playcount uses for something else")
        return prefix

    @field_validator("memory_limit")
    @classmethod
    def _memory(cls, value: str) -> str:
        if not re.match(_MEMORY, value):
            raise ValueError("must be a size with a unit such as `1GB`, `512MiB` or `50%`")
        return value.strip()

    @model_validator(mode="after")
    def _ages(self) -> Settings:
        if self.min_user_age > self.max_user_age:
            raise ValueError(
                f"min_user_age {self.min_user_age} is above max_user_age {self.max_user_age}: no user could pass"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # flags > PLAYCOUNT_* environment > playcount.toml
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    def store_path(self) -> Path:
        if isinstance(self.store, DuckDBStoreSettings) and self.store.path:
            return Path(self.store.path).expanduser()
        return Path(self.root) / "kpis.duckdb"


def _check_env() -> None:
    fields = {f.upper() for f in Settings.model_fields}
    for key in os.environ:
        if key.startswith(ENV_PREFIX):
            top = key[len(ENV_PREFIX) :].split("__", 1)[0]
            if top not in fields:
                raise SettingsError(
                    f"unknown setting in the environment: `{key}`",
                    fix=f"remove it or use one of: {', '.join(sorted(ENV_PREFIX + f for f in fields))}",
                )


def load_settings(config: str | Path | None = None, **flags: Any) -> Settings:
    """Settings from `config` (or `./playcount.toml` if present), the environment and flags.

    Flags whose value is None are not given. Raises `SettingsError` naming the bad key.
    """
    path = Path(config) if config else Path(CONFIG_FILE)
    if config and not path.is_file():
        raise SettingsError(f"no settings file at `{path}`", fix="check the --config path")
    _check_env()

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=path if path.is_file() else None)

    given = {k: v for k, v in flags.items() if v is not None}
    try:
        loaded = _FromFile(**given)
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"`{path}` is not valid TOML: {e}", fix="fix the file") from e
    except PydanticSettingsError as e:  # a value the environment source cannot even parse (bad JSON)
        raise SettingsError(
            f"{e}".replace('"', "`"),
            fix='give a dict or list setting as JSON, e.g. PLAYCOUNT_SPARK_CONF=\'{"spark.driver.memory": "4g"}\'',
        ) from e
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            raise SettingsError(
                f"unknown setting `{key}`",
                fix=f"remove it from {path} or the flags; known settings: {', '.join(Settings.model_fields)}",
                key=key,
            ) from e
        if err["type"] == "missing":
            raise SettingsError(
                f"setting `{key}` is required here",
                fix=f"set it in {path}, the PLAYCOUNT_* environment or the flags",
                key=key,
            ) from e
        if not key:  # a rule between settings
            raise SettingsError(
                f"settings contradict each other: {err['msg'].removeprefix('Value error, ')}",
                fix="correct them in playcount.toml, the PLAYCOUNT_* environment or the flags",
            ) from e
        raise SettingsError(
            f"setting `{key}` = `{str(err.get('input'))[:200]}` is invalid: {err['msg'].removeprefix('Value error, ')}",
            fix="correct it in playcount.toml, the PLAYCOUNT_* environment or the flag",
            key=key,
        ) from e
    return loaded
