"""The vault service's state as `dockctl status` shows it: per dock host, how many stored
recordings wait for the vault (counted from the catalog), when the last upload was, and
the last error — the service reports the latter two into the catalog's settings
(`vault_status:<host>`) after every pass and when it refuses to start.

Nothing here talks to the vault or imports boto3: `dockctl status` reads only the catalog.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from dockd.catalog import Catalog, RecordingStatus
from dockd.catalog.schema import Recording, Setting

PREFIX = "vault_status:"
#: the settings table's key column is String(64)
_KEY_MAX = 64
_VAULTABLE = (RecordingStatus.VERIFIED, RecordingStatus.DELETED_FROM_CAMERA)


def status_key(host: str) -> str:
    """`vault_status:<host>`; a host id too long for the key column is hashed (the value
    names the host)."""
    key = PREFIX + host
    if len(key) <= _KEY_MAX:
        return key
    return PREFIX + "#" + hashlib.sha256(host.encode()).hexdigest()[:40]


def record_status(catalog: Catalog, host: str, *, at: datetime, waiting: int | None,
                  error: str | None, uploaded: bool = False) -> None:
    """Publish one pass's outcome (or a refusal at start). The last upload and the last
    error are carried over from the previous report until a newer one replaces them.
    Raises DockdError when the catalog cannot take it (callers log and go on)."""
    key = status_key(host)
    before = _parse(catalog.setting(key))
    state: dict[str, Any] = {
        "host": host, "at": at.isoformat(), "state": "error" if error else "ok",
        "waiting": waiting, "error": error,
        "last_upload": at.isoformat() if uploaded else before.get("last_upload"),
        "last_error": error if error else before.get("last_error"),
        "last_error_at": at.isoformat() if error else before.get("last_error_at"),
    }
    catalog.put_setting(key, json.dumps(state))


@dataclass(frozen=True)
class VaultState:
    host: str
    #: stored and verified on that host, not yet in the vault (from the catalog)
    backlog: int
    #: ok | error | unknown (the vault service has never reported)
    state: str
    #: when the service last reported (ISO 8601), its current error, its last upload
    at: str | None = None
    error: str | None = None
    last_upload: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None

    def line(self) -> str:
        """One line for a person: backlog, last upload, last error."""
        parts = [f"{self.backlog} waiting (stored, not yet vaulted)",
                 f"last upload {_when(self.last_upload) if self.last_upload else 'never'}"]
        if self.state == "unknown":
            parts.append("the vault service has not reported (is dockd-vault.service "
                         "running?)")
        elif self.state == "error":
            parts.append(f"ERROR since {_when(self.at)}: {self.error}")
        else:
            parts.append(f"ok at {_when(self.at)}")
            if self.last_error:
                parts.append(f"last error {_when(self.last_error_at)}: {self.last_error}")
        return f"Vault ({self.host}): " + "; ".join(parts)


def vault_states(catalog: Catalog, *, configured: bool) -> list[VaultState]:
    """One state per dock host that reports to the vault or has recordings waiting for it.
    Empty when no host has a vault (none reported) and this host's config names none."""
    with catalog.reading() as s:
        reports = {key: value for key, value in s.execute(
            select(Setting.key, Setting.value).where(Setting.key.startswith(PREFIX)))}
        if not reports and not configured:  # before counting: a scan of every recording
            return []  # (1.8 s of `dockctl status` on a fleet-year catalog)
        backlog: dict[str | None, int] = {host: int(n) for host, n in s.execute(
            select(Recording.stored_on, func.count())
            .where(Recording.stored_sha256.is_not(None), Recording.vault_version.is_(None),
                   Recording.local_deleted_at.is_(None), Recording.status.in_(_VAULTABLE))
            .group_by(Recording.stored_on))}
    if not reports and not configured:
        return []
    by_host: dict[str, dict[str, Any]] = {}
    for key, value in reports.items():
        report = _parse(value)
        by_host[str(report.get("host") or key.removeprefix(PREFIX))] = report
    here = catalog.host
    hosts = set(by_host) | {h or here for h, n in backlog.items() if n}
    out = []
    for host in sorted(hosts):
        report = by_host.get(host, {})
        waiting = backlog.get(host, 0) + (backlog.get(None, 0) if host == here else 0)
        state = str(report.get("state")) if report.get("state") in ("ok", "error") else (
            "unknown")
        out.append(VaultState(host=host, backlog=waiting, state=state,
                              at=report.get("at"), error=report.get("error"),
                              last_upload=report.get("last_upload"),
                              last_error=report.get("last_error"),
                              last_error_at=report.get("last_error_at")))
    return out


def _parse(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _when(iso: str | None) -> str:
    if not iso:
        return "?"
    try:
        return f"{datetime.fromisoformat(iso):%Y-%m-%d %H:%M:%S}Z"
    except ValueError:
        return iso
