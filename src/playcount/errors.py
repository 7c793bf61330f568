"""One error root for playcount.

Every error says what failed, shows the bad value in backticks and says how to fix it.

Each error is *transient* (the same run again may succeed as is: a lock held, a network or store
hiccup) or *terminal* (something must be fixed first: a setting, a file, a corrupt store), by the
mixin it takes (`Transient`, `Terminal`; the model is dlt's). The property `transient` decides
the DAG's retries (a terminal error fails the task at once), the CLI's message ("safe to run
again") and what `watch` does (a transient error waits for the next poll; a terminal one is
reported on every poll until it is fixed). `is_transient` answers for any exception: one that is
not a playcount error is unexpected, and a re-run is safe.
"""

from __future__ import annotations

__all__ = [
    "Transient",
    "Terminal",
    "is_transient",
    "PlaycountError",
    "SettingsError",
    "LockedError",
    "SchemaError",
    "ValidationFailed",
    "StoreError",
    "MissingStoreError",
    "StorageError",
    "ArchiveConflictError",
    "MissingExtraError",
]


class Transient:
    """Mixin: the same run again may succeed as is."""

    transient = True


class Terminal:
    """Mixin: something must be fixed before a run can succeed."""

    transient = False


def is_transient(e: BaseException) -> bool:
    """Whether a re-run may succeed as is: a playcount error says so itself; any other exception
    is unexpected (a bug or the environment), and every run is safe to re-run."""
    return bool(getattr(e, "transient", True)) if isinstance(e, PlaycountError) else True


class PlaycountError(Terminal, Exception):
    """Root of every error playcount raises on purpose (terminal unless a subclass says otherwise)."""

    def __init__(
        self, message: str, *, fix: str | None = None, transient: bool | None = None, **context: object
    ) -> None:
        """`transient` overrides the class's own for this error (a store error no retry mends)."""
        if transient is not None:
            self.transient = transient
        self.message = message
        self.fix = fix
        self.context = context
        super().__init__(f"{message}. {fix}" if fix else message)


class SettingsError(PlaycountError):
    """A setting is unknown, mistyped or contradicts another."""


class LockedError(Transient, PlaycountError):
    """Another run holds the lock of this lake root."""


class SchemaError(PlaycountError):
    """A file cannot be used at all: unreadable, not UTF-8, a required column missing, no rows."""


class ValidationFailed(PlaycountError):
    """The run cannot go on: reference data is missing or rejected, or every stream file was."""


class StoreError(Transient, PlaycountError):
    """The KPI store could not be read or written."""


class MissingStoreError(StoreError):
    """The KPI store does not exist (no DuckDB file yet, no DynamoDB table)."""

    transient = False


class StorageError(Transient, PlaycountError):
    """An object of the lake could not be read, written or moved (the run is safe to re-run)."""


class ArchiveConflictError(StorageError):
    """A different file is already archived under the name a file would be moved to."""

    transient = False  # a storage error that no re-run mends: one of the two must be renamed


class MissingExtraError(PlaycountError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"`{package}` is not installed",
            fix=f"install the extra: pip install 'playcount[{extra}]'",
            package=package,
            extra=extra,
        )
