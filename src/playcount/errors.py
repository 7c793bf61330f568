"""One error root for playcount.

Every error says what failed, shows the bad value in backticks and says how to fix it.
`retryable` marks transient failures (a re-run may succeed as is) apart from terminal ones.
"""

from __future__ import annotations

__all__ = [
    "PlaycountError",
    "SettingsError",
    "LockedError",
    "SchemaError",
    "ValidationFailed",
    "StoreError",
    "StorageError",
    "MissingExtraError",
]


class PlaycountError(Exception):
    """Root of every error playcount raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, fix: str | None = None, **context: object) -> None:
        self.message = message
        self.fix = fix
        self.context = context
        super().__init__(f"{message}. {fix}" if fix else message)


class SettingsError(PlaycountError):
    """A setting is unknown, mistyped or contradicts another."""


class LockedError(PlaycountError):
    """Another run holds the lock of this lake root."""

    retryable = True


class SchemaError(PlaycountError):
    """A file cannot be used at all: unreadable, not UTF-8, a required column missing, no rows."""


class ValidationFailed(PlaycountError):
    """The run cannot go on: reference data is missing or rejected, or every stream file was."""


class StoreError(PlaycountError):
    """The KPI store could not be read or written."""

    retryable = True


class StorageError(PlaycountError):
    """An object of the lake could not be read, written or moved (the run is safe to re-run)."""

    retryable = True


class MissingExtraError(PlaycountError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"`{package}` is not installed",
            fix=f"install the extra: pip install 'playcount[{extra}]'",
            package=package,
            extra=extra,
        )
