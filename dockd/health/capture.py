"""Capture on every dock: battery snapshot, shift log (clock-corrected), clock offset, storage.

The camera's clock is measured against the host's when the camera is asked who it is; every
shift-log time is then moved onto the host's clock by that offset. A clock off by more than
`health.clock_drift_s` is set (if the caller lets us) and the set is an audit event.
Device-given times are hostile: entries that land in the future are dropped and counted.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from dockd.catalog import Catalog
from dockd.catalog.rows import CaptureRow
from dockd.config import Config
from dockd.errors import DeviceGone, DockdError
from dockd.model import BatterySnapshot, CameraIdentity, ShiftEvent, ShiftLog, ShiftSample

log = structlog.get_logger(__name__)

#: a shift-log entry this far past the host's now (after correction) is not believed
FUTURE_SLACK = timedelta(minutes=5)


class DiskUsage(NamedTuple):
    total: int
    used: int
    free: int


DiskUsageFn = Callable[[Path], DiskUsage]


def _disk_usage(path: Path) -> DiskUsage:
    u = shutil.disk_usage(path)
    return DiskUsage(u.total, u.used, u.free)


@dataclass(frozen=True)
class CaptureResult:
    capture: CaptureRow
    #: camera clock minus host clock when docked, seconds
    clock_offset_s: float
    clock_set: bool
    #: why the clock could not be set (it was off by more than the threshold)
    clock_error: str | None
    new_samples: int
    new_events: int
    #: shift-log entries refused (times in the future even after correction)
    rejected: int


def capture_dock(
    catalog: Catalog,
    *,
    serial: str,
    session_id: int | None,
    identity: CameraIdentity,
    battery: BatterySnapshot | None,
    shift_log: ShiftLog | None,
    host_now: datetime,
    config: Config,
    set_clock: Callable[[datetime], None] | None = None,
    disk_usage: DiskUsageFn = _disk_usage,
) -> CaptureResult:
    """Store what this dock told about the camera's health; set its clock if it is off.

    `host_now` is the host's time when `identity` was read (its `clock` is the camera's at
    that moment). `set_clock` (e.g. the session's) is called with the host's time when the
    offset exceeds the threshold; a DeviceError there is recorded, not raised (DeviceGone
    is raised: the camera left). `battery` or `shift_log` is None when the camera could
    not tell.
    """
    started = time.monotonic()
    offset_s = (identity.clock - host_now).total_seconds()
    offset = timedelta(seconds=offset_s)
    limit = host_now + FUTURE_SLACK
    samples: list[tuple[datetime, ShiftSample]] = []
    events: list[tuple[datetime, ShiftEvent]] = []
    rejected = 0
    for sample in shift_log.samples if shift_log else ():
        at = sample.at - offset
        if at > limit:
            rejected += 1
        else:
            samples.append((at, sample))
    for event in shift_log.events if shift_log else ():
        at = event.at - offset
        if at > limit:
            rejected += 1
        else:
            events.append((at, event))

    clock_details: dict[str, Any] | None = None
    clock_error: str | None = None
    if abs(offset_s) > config.health.clock_drift_s:
        if set_clock is None:
            clock_error = "not set: no session to set it through"
        else:
            target = host_now + timedelta(seconds=time.monotonic() - started)
            try:
                set_clock(target)
            except DeviceGone:
                raise
            except DockdError as exc:
                clock_error = f"{type(exc).__name__}: {exc}"
            else:
                clock_details = {"session": session_id, "offset_s": round(offset_s, 3),
                                 "camera_clock": identity.clock.isoformat(),
                                 "set_to": target.isoformat()}

    storage: tuple[int, int] | None = None
    try:
        usage = disk_usage(config.storage.path)
        storage = (usage.total, usage.free)
    except OSError:
        storage = None

    row, new_samples, new_events = catalog.health.record_capture(
        serial, session_id=session_id, at=host_now, clock_offset_s=offset_s,
        clock_set=clock_details, battery=battery, storage=storage,
        samples=samples, events=events)
    result = CaptureResult(capture=row, clock_offset_s=offset_s,
                           clock_set=clock_details is not None, clock_error=clock_error,
                           new_samples=new_samples, new_events=new_events, rejected=rejected)
    fields: dict[str, Any] = {
        "serial": serial, "session": session_id, "clock_offset_s": round(offset_s, 3),
        "clock_set": result.clock_set, "shift_samples": new_samples, "shift_events": new_events,
        "rejected": rejected}
    if battery is not None:
        fields |= {"soc_percent": battery.soc_percent, "temperature_c": battery.temperature_c,
                   "cycle_count": battery.cycle_count}
    if clock_error is not None:
        fields["clock_error"] = clock_error
    (log.warning if clock_error or rejected else log.info)("health_capture", **fields)
    return result
