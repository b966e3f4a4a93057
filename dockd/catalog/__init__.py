"""The catalog: what was found on which camera, what became of it, and a hash-chained audit trail.

Use `Catalog.open(url)`; see docs/catalog.md.
"""

from dockd.catalog.repo import Catalog
from dockd.catalog.rows import (
    AttemptRow,
    AuditRecord,
    CameraRow,
    ChainProblem,
    RecordingRow,
    SessionCounts,
    SessionRow,
    StatusSnapshot,
)
from dockd.catalog.types import AttemptOutcome, EventKind, RecordingStatus

__all__ = [
    "AttemptOutcome",
    "AttemptRow",
    "AuditRecord",
    "CameraRow",
    "Catalog",
    "ChainProblem",
    "EventKind",
    "RecordingRow",
    "RecordingStatus",
    "SessionCounts",
    "SessionRow",
    "StatusSnapshot",
]
