"""The README's exit codes, for every command, from one error handler: 0 success, 1 validation
failed, 2 usage or settings error, 3 another run holds the lock or a failure (safe to re-run)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import tiny_lake
from playcount.cli import app
from playcount.lake import RunLock

GOOD = "1,T1,2024-06-25 10:00:00\n2,T2,2024-06-25 11:00:00\n"

#: every command that reads a lake root, with what it needs besides `--root`
LAKE_COMMANDS = {
    "run": [],
    "validate": [],
    "watch": ["--once"],
    "kpis": ["genres"],
    "report": [],
    "runs": [],
    "rebuild": [],
    "replay": [],
}


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, " ".join(result.output.split())  # as one line: rich wraps at 80


@pytest.mark.parametrize("command", LAKE_COMMANDS)
def test_a_root_that_does_not_exist_is_a_settings_error(tmp_path: Path, command: str) -> None:
    code, output = _invoke(command, *LAKE_COMMANDS[command], "--root", str(tmp_path / "missing"))
    assert code == 2, output
    assert "does not exist" in output or "no such" in output.lower(), output


@pytest.mark.parametrize("command", [*LAKE_COMMANDS, "demo"])
def test_a_bad_setting_is_exit_2_and_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    root = tiny_lake(tmp_path / "lake", {"a.csv": GOOD})
    monkeypatch.setenv("PLAYCOUNT_TOP_SONGS_N", "lots")
    code, output = _invoke(command, *LAKE_COMMANDS.get(command, []), "--root", str(root))
    assert code == 2, output
    assert "top_songs_n" in output, output


def test_an_unknown_option_is_exit_2() -> None:
    assert _invoke("run", "--no-such-option")[0] == 2


def test_success_and_a_failed_validation(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path / "ok", {"a.csv": GOOD})
    assert _invoke("run", "--root", str(root))[0] == 0
    assert _invoke("run", "--root", str(root))[0] == 0  # nothing to do is a success too
    for command in ("kpis", "report", "runs"):
        code, output = _invoke(command, *LAKE_COMMANDS[command], "--root", str(root))
        assert code == 0, (command, output)
    failed = tiny_lake(tmp_path / "failed", {"a.csv": GOOD})
    (failed / "raw_data/users/users.csv").unlink()
    assert _invoke("validate", "--root", str(failed))[0] == 1
    assert _invoke("run", "--root", str(failed))[0] == 1


@pytest.mark.parametrize("command", ["run", "watch", "replay", "rebuild"])
def test_a_held_lock_is_exit_3_and_safe_to_rerun(tmp_path: Path, command: str) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    with RunLock(root / "_playcount/lock", "another-run"):
        code, output = _invoke(command, *LAKE_COMMANDS[command], "--root", str(root))
    if command == "watch":  # watch reports it and polls on; once, it ends with 0
        assert code == 0 and "locked" in output, output
    else:
        assert code == 3 and "locked" in output and "another-run" in output, output
    assert (root / "raw_data/streams/a.csv").exists()


def test_a_corrupt_store_is_exit_3_without_the_promise_of_a_rerun(tmp_path: Path) -> None:
    root = tiny_lake(tmp_path, {"a.csv": GOOD})
    (root / "kpis.duckdb").write_bytes(b"not a database at all" * 100)
    for command in ("run", "kpis"):
        code, output = _invoke(command, *LAKE_COMMANDS[command], "--root", str(root))
        assert code == 3, (command, output)
        assert "kpis.duckdb" in output and "safe to run again" not in output, output
