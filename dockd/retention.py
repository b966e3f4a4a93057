"""Retention: how long a recording is kept, and the sweep that deletes the local copies of
what has expired (docs/retention.md).

A recording is kept `days` (its category's, else `[retention] default_days`) from the later
of its start and the day it was first listed at a dock — a camera clock in 1970 cannot
expire footage the moment it arrives. A legal hold, a category kept "until_released", or 0
days keep it for good. The daemon sweeps every `sweep_every_h`: an expired local copy is
deleted only when no hold keeps it, and — with a vault configured — only once the vault
holds a verified copy; the file is proven against the chain first, and the deletion is a
tombstone event that keeps every hash. The vault's own versions are swept by the vault
service once their lock has ended (dockd/vault/service.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from dockd.catalog import Catalog, RecordingRow, RecordingStatus
from dockd.catalog.custody import Custody
from dockd.catalog.lease import LeaseOwner, live_token, new_token
from dockd.config import UNTIL_RELEASED, Config, RetentionConfig
from dockd.custody import prove
from dockd.errors import DockdError, LeaseHeld
from dockd.flags import Flag
from dockd.store import STORE_MARKER, fsync_dir

log = structlog.get_logger(__name__)
_KEPT_STATUSES = (RecordingStatus.VERIFIED, RecordingStatus.DELETED_FROM_CAMERA)


def kept_until(rec: RecordingRow, policy: RetentionConfig) -> datetime | None:
    """When the recording's retention ends; None while something keeps it for good."""
    if rec.legal_hold:
        return None
    days = policy.days_for(rec.category)
    if days == UNTIL_RELEASED or not days:
        return None
    assert isinstance(days, float | int)
    return max(rec.started, rec.created_at) + timedelta(days=days)


def kept_until_by_chain(rec: RecordingRow, custody: Custody,
                        policy: RetentionConfig) -> datetime | None:
    """`kept_until` counted from the chain's first event for the recording: the check made
    right before anything is deleted (a row's created_at is not a custody fact)."""
    first = custody.first_at
    return kept_until(rec if first is None else replace(rec, created_at=first), policy)


def why_kept(rec: RecordingRow, policy: RetentionConfig) -> str:
    days = policy.days_for(rec.category)
    category = rec.category or "default"
    if rec.legal_hold:
        return f"legal hold: {rec.hold_reason or 'no reason given'}"
    if rec.category and rec.category not in dict(policy.categories):
        return f"category {category} is not configured here: kept for good"
    if days == UNTIL_RELEASED:
        return f"category {category}: kept until released"
    if not days:
        return f"category {category}: kept for good (no retention set)"
    return f"category {category}: kept {days:g} days"


@dataclass(frozen=True)
class Due:
    """What retention says of one kept recording."""

    rec: RecordingRow
    until: datetime | None
    why: str


def plan(catalog: Catalog, config: Config) -> Iterator[Due]:
    """Every recording a copy of which is still kept somewhere, with when it goes."""
    for rec in catalog.kept_recordings():
        yield Due(rec, kept_until(rec, config.retention), why_kept(rec, config.retention))


@dataclass
class SweepReport:
    deleted: list[int] = field(default_factory=list)
    #: recording id → why its expired local copy was not deleted now
    kept: dict[int, str] = field(default_factory=dict)


def sweep_local(catalog: Catalog, config: Config, now: datetime, *,
                dry_run: bool = False, stop: Flag | None = None,
                beat: Callable[[], None] | None = None) -> SweepReport:
    """Delete this host's local copies whose retention has ended (see the module doc).
    `stop` ends the sweep between two files; `beat` is called while a file is re-hashed."""
    report = SweepReport()
    host = catalog.host
    if not (config.storage.path / STORE_MARKER).is_file():
        # an unmounted evidence disk shows an empty directory: judge nothing by it
        log.error("retention_sweep_refused", store=str(config.storage.path),
                  error=f"no {STORE_MARKER} in the store: is the evidence disk mounted?")
        return report
    owner = LeaseOwner.here(host, new_token())
    with live_token(owner.token):
        for rec in catalog.kept_recordings(host=host):
            if stop is not None and stop.is_set():
                break
            until = kept_until(rec, config.retention)
            if (until is None or until > now or rec.local_deleted_at is not None
                    or rec.store_path is None or rec.status not in _KEPT_STATUSES):
                continue
            if config.vault is not None and (rec.vault_version is None
                                             or rec.vault_deleted_at is not None):
                report.kept[rec.id] = "waits for the vault's verified copy"
                continue
            if config.vault is not None and (rec.vault_lock_until is None
                                             or rec.vault_lock_until < until):
                # the vault copy must be locked for as long as retention keeps it (a policy
                # lengthened while the vault service was down leaves a shorter lock)
                report.kept[rec.id] = "waits for the vault copy's lock to cover its retention"
                continue
            if dry_run:
                report.deleted.append(rec.id)
                continue
            reason = _delete_local(catalog, rec, owner, until, now, config, beat)
            if reason is None:
                report.deleted.append(rec.id)
            else:
                report.kept[rec.id] = reason
    if report.deleted or report.kept:
        log.info("retention_sweep", dry_run=dry_run, deleted=len(report.deleted),
                 kept=len(report.kept), reasons=sorted(set(report.kept.values()))[:5])
    return report


def _delete_local(catalog: Catalog, rec: RecordingRow, owner: LeaseOwner, until: datetime,
                  now: datetime, config: Config,
                  beat: Callable[[], None] | None = None) -> str | None:
    """One expired local copy: lease, proof against the chain, unlink, fsync, tombstone.
    Returns why it was kept, or None once deleted."""
    try:
        catalog.take_lease(rec.id, owner)
    except LeaseHeld as exc:
        return f"in use: {exc}"
    try:
        custody = catalog.custody(rec.id)
        if custody.problems or custody.mismatch(rec):
            return "its row disagrees with its custody chain: dockctl verify names it"
        by_chain = kept_until_by_chain(rec, custody, config.retention)
        if by_chain is None or by_chain > now:
            return "its custody chain dates it later than its row: dockctl verify"
        facts = custody.facts or {}
        path = Path(str(facts.get("store_path")))
        proof = prove(path, size=facts.get("stored_size"), sha256=facts.get("stored_sha256"),
                      beat=beat)
        if not proof.ok:
            # a missing file is not tombstoned: an unmounted disk, a person's mistake or an
            # attacker would otherwise be recorded as "deleted by retention" (verify names it)
            log.error("retention_copy_unproven", recording_id=rec.id, path=str(path),
                      error=proof.reason)
            return f"the local copy is not the one recorded: {proof.reason}"
        days = config.retention.days_for(rec.category)
        # the tombstone first, under the row's lock (a hold or category set meanwhile, on
        # any host, refuses it); then the unlink. A crash between leaves a file whose row
        # says deleted, never a deletion the chain does not record.
        catalog.mark_local_deleted(rec.id, owner, at=now, category=rec.category, reason=(
            f"kept {days:g} days (category {rec.category or 'default'}) until "
            f"{until:%Y-%m-%d %H:%M}Z"))
        try:
            path.unlink()
            fsync_dir(path.parent)
        except OSError as exc:
            log.error("retention_unlink_failed", recording_id=rec.id, path=str(path),
                      error=str(exc))
            return f"tombstoned but the file could not be removed: {exc}"
        log.info("deleted_by_retention", recording_id=rec.id, serial=rec.camera_serial,
                 recording=rec.camera_name, path=str(path), kept_until=until.isoformat())
        return None
    except (OSError, DockdError) as exc:
        log.error("retention_delete_failed", recording_id=rec.id, error=str(exc))
        return f"could not be deleted: {exc}"
    finally:
        catalog.release_lease(rec.id, owner)


def mode_allows_time_travel(catalog: Catalog) -> bool:
    """A sweep 'as of' another date is for simulated catalogs only: on real evidence it
    would delete early."""
    return catalog.setting("mode") == "simulated"



# --- the storage forecast, with retention counted (for dockd/health) ----------------------


def expires_anything(policy: RetentionConfig) -> bool:
    """Whether any recording can have a kept-until date (a default or a category of days)."""
    return any(isinstance(d, float | int) and d > 0
               for d in (policy.default_days, *(d for _, d in policy.categories)))


def expiring_local(catalog: Catalog, config: Config, *,
                   host: str | None = None) -> list[tuple[datetime, int]]:
    """(kept until, stored bytes) of each local copy on `host` (default: this one) that
    retention will delete, soonest first; held and kept-for-good copies are not in it."""
    return expiring_copies(catalog, config.retention, host=host)


def expiring_copies(catalog: Catalog, policy: RetentionConfig, *,
                    host: str | None = None) -> list[tuple[datetime, int]]:
    """`expiring_local` under `policy`."""
    if not expires_anything(policy):
        return []  # nothing can expire: no need to read every recording
    out: list[tuple[datetime, int]] = []
    for rec in catalog.kept_recordings(host=host or catalog.host):
        until = kept_until(rec, policy)
        if until is not None and rec.local_deleted_at is None and rec.stored_size:
            out.append((until, rec.stored_size))
    return sorted(out)


def storage_forecast(catalog: Catalog, config: Config, *, now: datetime, free_bytes: int,
                     bytes_per_day: float, host: str | None = None,
                     horizon_days: float = 3650.0) -> dict[str, Any]:
    """When the store fills at `bytes_per_day` if retention frees what it will: the copies
    already stored on their dates, and from `default_days` on each day's ingest again (so a
    store that holds `steady_bytes` never fills). Returns days_left (None: not within the
    horizon), steady_bytes (None without a default retention) and freed_by_retention
    (per UTC day: bytes). Assumes the sweep runs and, with a vault, keeps up."""
    return forecast_free_space(
        free_bytes=free_bytes, bytes_per_day=bytes_per_day, now=now,
        expiring=expiring_local(catalog, config, host=host),
        steady_days=config.retention.default_days, horizon_days=horizon_days)


def forecast_free_space(*, free_bytes: float, bytes_per_day: float, now: datetime,
                        expiring: Sequence[tuple[datetime, int]], steady_days: float | None,
                        horizon_days: float = 3650.0) -> dict[str, Any]:
    """`storage_forecast` over plain numbers (no catalog): free space at `now`, the fill
    rate, the (kept until, bytes) of copies retention deletes, and the days each day's
    ingest is kept (None or 0: for good). dockd/health judges the store with it."""
    steady = float(steady_days) if steady_days else None
    freed: dict[str, int] = {}
    jumps: list[tuple[float, int]] = []
    for until, size in expiring:
        at = max(0.0, (until - now).total_seconds() / 86400)
        jumps.append((at, size))
        day = max(until, now).date().isoformat()
        freed[day] = freed.get(day, 0) + size
    # walk the piecewise-linear free space: down at the ingest rate until the first day's
    # ingest starts to expire, flat after; up by each expiring copy
    marks = sorted({0.0, horizon_days, *(t for t, _ in jumps if t < horizon_days),
                    *((steady,) if steady is not None and steady < horizon_days else ())})
    free = float(free_bytes)
    left: float | None = None
    pending = sorted(jumps)
    for start, end in itertools.pairwise(marks):
        while pending and pending[0][0] <= start:
            free += pending.pop(0)[1]
        slope = bytes_per_day if steady is None or start < steady else 0.0
        if slope > 0 and free - slope * (end - start) <= 0:
            left = start + max(free, 0.0) / slope
            break
        free -= slope * (end - start)
    return {"days_left": round(left, 2) if left is not None else None,
            "steady_bytes": int(bytes_per_day * steady) if steady is not None else None,
            "freed_by_retention": sorted(freed.items())}
