"""Stage 1: what is in the landing zone, settled, fingerprinted, new or done (SPEC §5)."""

from __future__ import annotations

import logging
import time

from playcount.errors import SettingsError
from playcount.lake import LocalStorage
from playcount.lake.layout import CSV_SUFFIXES
from playcount.pipeline.results import (
    Discovery,
    InputFile,
)
from playcount.pipeline.run import (
    Run,
)

log = logging.getLogger("playcount")


# -- 1. discover -------------------------------------------------------------------------------


def is_landing_file(name: str) -> bool:
    """Whether a path below a landing prefix is a landing file (SPEC §5): a name ending in `.csv`
    or `.csv.gz`, any case, and no component starting with `.` or `_` (in-progress or
    bookkeeping files: `_temporary/`, `.part`, `_SUCCESS`)."""
    return name.lower().endswith(CSV_SUFFIXES) and not any(p.startswith((".", "_")) for p in name.split("/"))


def _landing(run: Run, dataset: str) -> list[InputFile]:
    """The dataset's landing files, not yet fingerprinted (`problem` set for unreadable ones)."""
    prefix = run.layout.landing(dataset)
    out = []
    for f in run.storage.list(prefix, problems=True):
        name = f.path[len(prefix) + 1 :]
        if is_landing_file(name):
            signature = run.storage.signature(f.path) if f.modified is not None else None
            out.append(
                InputFile(
                    dataset=dataset,
                    path=f.path,
                    name=name,
                    fingerprint="",
                    size=f.size,
                    modified=f.modified,
                    signature=signature,
                    problem=f.problem,
                )
            )
    return out


def _settle(run: Run, files: list[InputFile]) -> list[InputFile]:
    """Wait for the local files modified within `settle_seconds` until they are that old; those
    that changed meanwhile get their `problem` (still being written). S3 objects are complete
    once listed and have no signature here."""
    settle = run.settings.settle_seconds
    now = time.time()
    young = [f for f in files if f.modified is not None and not f.problem and now - f.modified < settle]
    if young:
        # (a modification time in the future, a skewed clock, waits the whole settle time)
        wait = min(settle, max(settle - (now - f.modified) for f in young if f.modified is not None))
        run.progress("discover", f"waiting {wait:.1f}s for {len(young)} file(s) modified in the last {settle:g}s")
        time.sleep(wait)
        for f in young:
            if _signature(run, f.path) != f.signature:
                f.waiting = _still_written(run, f)
    return files


def _signature(run: Run, path: str) -> str | None:
    try:
        return run.storage.signature(path)
    except FileNotFoundError:
        return None


def _still_written(run: Run, f: InputFile) -> str:
    return (
        f"`{f.name}` is still being written (it changed within {run.settings.settle_seconds:g}s): left in the "
        "landing zone for the next run"
    )


def _fingerprinted(run: Run, files: list[InputFile]) -> list[InputFile]:
    """Each usable file with its fingerprint. A local file whose signature moved while it was hashed
    is still being written: its `problem` says so. Unusable files get a fingerprint of what they are."""
    for f in files:
        if f.waiting:
            continue
        try:
            f.fingerprint = run.storage.fingerprint(f.path)  # of the link itself, for a bad symlink
        except FileNotFoundError:
            f.waiting = f"`{f.name}` disappeared while the run looked at it"
            continue
        if f.signature is not None and _signature(run, f.path) != f.signature:
            f.waiting = _still_written(run, f)
    return files


def _require_root(run: Run) -> None:
    if isinstance(run.storage, LocalStorage) and not run.storage.path.is_dir():
        raise SettingsError(
            f"the lake root `{run.storage.root}` does not exist",
            fix="pass --root with a folder holding raw_data/{songs,users,streams}/ (or run `playcount demo`)",
        )


def discover(run: Run) -> Discovery:
    """New stream files (fingerprint not done in the ledger) and the current reference files, each
    once complete (SPEC §5: settled; unusable ones apart)."""
    _require_root(run)
    found = {ds: _landing(run, ds) for ds in ("streams", "songs", "users")}
    _settle(run, [f for files in found.values() for f in files])
    for files in found.values():
        _fingerprinted(run, files)
    unusable = [f for files in found.values() for f in files if f.problem and not f.waiting]
    pending = [f for files in found.values() for f in files if f.waiting]
    ok = {ds: [f for f in files if not f.problem and not f.waiting] for ds, files in found.items()}
    done = run.ledger.done()
    new: list[InputFile] = []
    skipped: list[InputFile] = []
    seen: set[str] = set()
    for f in ok["streams"]:
        (skipped if f.fingerprint in done or f.fingerprint in seen else new).append(f)
        seen.add(f.fingerprint)
    result = Discovery(
        new=new, skipped=skipped, songs=ok["songs"], users=ok["users"], pending=pending, unusable=unusable
    )
    waiting = f", {len(pending)} still being written" if pending else ""
    run.progress("discover", f"{len(new)} new stream file(s), {len(skipped)} already done{waiting}")
    return result
