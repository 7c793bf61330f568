"""DuckDB on S3: the httpfs extension (from the `duckdb-extension-httpfs` wheel, no network
needed) and an S3 secret made from the AWS credential chain. Called by the DuckDB engine only.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from playcount.aws import S3Access
from playcount.errors import MissingExtraError, PlaycountError

__all__ = ["load_httpfs", "create_s3_secret", "extension_directory"]


def extension_directory() -> Path:
    """Where DuckDB keeps installed extensions for playcount: a user cache folder, else tmp."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    for candidate in (
        base / "playcount" / "duckdb-extensions",
        Path(tempfile.gettempdir()) / f"playcount-duckdb-extensions-{os.getuid()}",
    ):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(candidate, os.W_OK):
            return candidate
    raise PlaycountError(
        "no writable folder for DuckDB extensions",
        fix="set XDG_CACHE_HOME to a writable folder",
    )


def _wheel_extension(version: str) -> Path | None:
    try:
        import duckdb_extension_httpfs
    except ImportError:
        return None
    base = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
    path = base / f"v{version}" / "httpfs.duckdb_extension"
    if not path.is_file():
        shipped = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
        raise PlaycountError(
            f"the installed httpfs extension is for DuckDB {', '.join(shipped) or 'no version'}, not `v{version}`",
            fix=f"install the matching wheel: pip install 'duckdb-extension-httpfs=={version}'",
        )
    return path


def load_httpfs(db: Any) -> None:
    """Install (from the wheel, offline) and load httpfs into the raw duckdb connection `db`."""
    import duckdb

    wheel = _wheel_extension(duckdb.__version__)
    if wheel is None:
        try:  # maybe already installed (or auto-installable) in DuckDB's default folder
            db.execute("LOAD httpfs")
            return
        except duckdb.Error as e:
            raise MissingExtraError("duckdb-extension-httpfs", "s3") from e
    folder = str(extension_directory()).replace("'", "''")
    db.execute(f"SET extension_directory = '{folder}'")
    installed = db.execute("SELECT installed FROM duckdb_extensions() WHERE extension_name = 'httpfs'").fetchone()
    if not (installed and installed[0]):
        db.execute("INSTALL '" + str(wheel).replace("'", "''") + "'")
    db.execute("LOAD httpfs")


def _q(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def create_s3_secret(db: Any, access: S3Access, name: str = "playcount_s3") -> None:
    """(Re)create the S3 secret DuckDB uses for every `s3://` URL."""
    parts = [
        "TYPE s3",
        f"KEY_ID {_q(access.key_id)}",
        f"SECRET {_q(access.secret)}",
        f"REGION {_q(access.region)}",
    ]
    if access.session_token:
        parts.append(f"SESSION_TOKEN {_q(access.session_token)}")
    if access.endpoint:
        parts += [f"ENDPOINT {_q(access.endpoint)}", "URL_STYLE 'path'"]
    parts.append(f"USE_SSL {'true' if access.use_ssl else 'false'}")
    db.execute(f"CREATE OR REPLACE SECRET {name} ({', '.join(parts)})")
