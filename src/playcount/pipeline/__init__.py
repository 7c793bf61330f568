"""The run: seven stages (SPEC §5), each a function of the lake that returns a typed result.

Every stage reads what it needs from the lake (the previous stages' results are saved under
`_playcount/staging/<run-id>/`), so any stage can be re-run on its own with the run id, and a
crash at any point is repaired by the next run:

- events are written per (source file, date) and named by the file's fingerprint, so
  re-processing a file overwrites instead of duplicating;
- KPIs of a date are recomputed from *all* events of that date, and the store replaces that
  date's rows, so no stale rank survives;
- a file is marked done in the ledger only after its events are loaded and it is archived.

The package, by role: `results` (the typed stage results and the run report), `run` (the run
context, opening a run, the lock and staging rules), `discover`, `validate` and `stages` (the
stages), `runner` (the one sequencer every way of running goes through).
"""

from playcount.pipeline.discover import discover, is_landing_file
from playcount.pipeline.results import (
    ArchiveResult,
    Discovery,
    FileOutcome,
    FileStatus,
    InputFile,
    KpiResult,
    LoadResult,
    Progress,
    RunReport,
    RunStatus,
    TransformResult,
    Validation,
    ValidationStatus,
)
from playcount.pipeline.run import (
    STALE_STAGING,
    Run,
    check_writable,
    clear_stale_staging,
    new_run_id,
    open_run,
    run_started_at,
)
from playcount.pipeline.runner import (
    STAGES,
    STEPS,
    Step,
    StepFailure,
    failure_reason,
    rebuild,
    replay,
    run_pipeline,
    run_step,
    run_steps,
)
from playcount.pipeline.stages import archive, compute_kpis, finish, load, staged_report, transform
from playcount.pipeline.validate import validate

__all__ = [
    "Run",
    "InputFile",
    "FileOutcome",
    "FileStatus",
    "RunStatus",
    "ValidationStatus",
    "Discovery",
    "Validation",
    "TransformResult",
    "KpiResult",
    "LoadResult",
    "ArchiveResult",
    "RunReport",
    "Progress",
    "open_run",
    "new_run_id",
    "run_started_at",
    "discover",
    "is_landing_file",
    "validate",
    "transform",
    "compute_kpis",
    "load",
    "archive",
    "finish",
    "run_pipeline",
    "run_steps",
    "rebuild",
    "replay",
    "run_step",
    "staged_report",
    "clear_stale_staging",
    "check_writable",
    "failure_reason",
    "STAGES",
    "STEPS",
    "Step",
    "StepFailure",
    "STALE_STAGING",
]
