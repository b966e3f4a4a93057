"""Transfer health per (camera, dock port): attempts, failures, retries, throughput."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from dockd.catalog.rows import TransferRecord


def port_name(dock: str | None, slot: int | None) -> str:
    return f"{dock or '?'}/{slot if slot is not None else '?'}"


@dataclass
class CellStats:
    attempts: int = 0
    failed: int = 0
    #: attempts beyond the first for a recording within one dock session
    retries: int = 0
    ok_bytes: int = 0
    ok_seconds: float = 0.0
    error_kinds: set[str] = field(default_factory=set)

    @property
    def fail_rate(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0

    @property
    def mb_s(self) -> float | None:
        return self.ok_bytes / self.ok_seconds / 1e6 if self.ok_seconds > 0 else None

    def add(self, other: CellStats) -> None:
        self.attempts += other.attempts
        self.failed += other.failed
        self.retries += other.retries
        self.ok_bytes += other.ok_bytes
        self.ok_seconds += other.ok_seconds
        self.error_kinds |= other.error_kinds


def transfer_cells(records: Sequence[TransferRecord]) -> dict[tuple[str, str], CellStats]:
    """(camera serial, port name) → statistics."""
    cells: dict[tuple[str, str], CellStats] = {}
    seen: set[tuple[int | None, int]] = set()
    for r in records:
        cell = cells.setdefault((r.camera_serial, port_name(r.dock, r.slot)), CellStats())
        cell.attempts += 1
        ident = (r.session_id, r.recording_id)
        if ident in seen:
            cell.retries += 1
        seen.add(ident)
        if r.ok:
            cell.ok_bytes += r.bytes
            cell.ok_seconds += (r.finished_at - r.started_at).total_seconds()
        else:
            cell.failed += 1
            if r.error_kind:
                cell.error_kinds.add(r.error_kind)
    return cells


def by_camera(cells: dict[tuple[str, str], CellStats]) -> dict[str, CellStats]:
    out: dict[str, CellStats] = {}
    for (cam, _), c in cells.items():
        out.setdefault(cam, CellStats()).add(c)
    return out


def by_port(cells: dict[tuple[str, str], CellStats]) -> dict[str, CellStats]:
    out: dict[str, CellStats] = {}
    for (_, port), c in cells.items():
        out.setdefault(port, CellStats()).add(c)
    return out
