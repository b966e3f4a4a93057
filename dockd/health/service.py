"""Keep the stored findings current and tell a log collector what changed.

`refresh_findings` evaluates the fleet, stores the result and logs one structured event per
finding raised (`health_finding_raised`) or cleared (`health_finding_cleared`). The daemon
calls it after each dock session (and may on a timer, for overdue cameras); `dockctl health`
only reads.
"""

from __future__ import annotations

import json
from datetime import datetime

import structlog

from dockd.catalog import Catalog
from dockd.catalog.rows import FindingRecord
from dockd.config import Config
from dockd.health.findings import Finding, evaluate

log = structlog.get_logger(__name__)


def refresh_findings(catalog: Catalog, config: Config, *, now: datetime
                     ) -> tuple[list[Finding], list[FindingRecord], list[FindingRecord]]:
    """(all findings now, the ones raised, the ones cleared)."""
    findings = evaluate(catalog, config.health, now=now, store=str(config.storage.path),
                        retention=config.retention)
    raised, cleared = catalog.health.sync_findings([f.draft() for f in findings])
    for r in raised:
        _emit("health_finding_raised", r)
    for r in cleared:
        _emit("health_finding_cleared", r)
    return findings, raised, cleared


def _emit(event: str, r: FindingRecord) -> None:
    level = log.warning if event.endswith("raised") and r.severity != "notice" else log.info
    level(event, finding=r.code, subject=r.subject, severity=r.severity, summary=r.summary,
          advice=r.advice, evidence=json.loads(r.evidence))
