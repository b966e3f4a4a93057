"""`dockd probe`: what is docked, and what each camera says about itself — nothing ingested."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

import structlog

from dockd.devices import DeviceOpener
from dockd.errors import DeviceError
from dockd.events import AnyRef, UsbDeviceRef
from dockd.model import RecordingInfo, RefusedRecording

log = structlog.get_logger(__name__)


def _plain(value: Any) -> Any:
    """Dataclasses → JSON-ready dicts (datetimes as RFC 3339, enums by value, bytes as hex)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def probe_device(opener: DeviceOpener, ref: AnyRef, *, timeout_s: float) -> dict[str, Any]:
    """One camera's identity, battery and recordings; a device error becomes an `error` entry.

    `recordings` holds what an ingest would take; `refused` holds the entries the driver
    refused on their own (`label`: the name escaped to printable ASCII, `reason`), which an
    ingest leaves on the camera."""
    result: dict[str, Any] = {"slot": ref.slot, "port": ref.port_path, "bus": ref.bus}
    if isinstance(ref, UsbDeviceRef):
        result["usb_id"] = f"{ref.vendor_id:04x}:{ref.product_id:04x}"
    matched = opener.match(ref)
    if matched is None:
        result["driver"] = None
        result["error"] = "no driver matches this device"
        return result
    result["driver"] = matched.driver.name
    try:
        _, session = opener.open(ref, timeout_s=timeout_s)
        try:
            result["identity"] = _plain(session.identity())
            result["battery"] = _plain(session.battery())
            listing = session.recordings()
            result["recordings"] = [_plain(r) | {"sha256": r.sha256_hex} for r in listing
                                    if isinstance(r, RecordingInfo)]
            result["refused"] = [_plain(r) | {"sha256": r.sha256.hex() if r.sha256 else None}
                                 for r in listing if isinstance(r, RefusedRecording)]
        finally:
            session.close()
    except DeviceError as exc:
        result["error"] = f"{exc.kind}: {exc}"
        log.warning("probe_failed", slot=ref.slot, port=ref.port_path, error_kind=exc.kind,
                    error=str(exc))
    return result
