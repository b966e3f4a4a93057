"""What a camera tells us, as plain values. Drivers produce these; the core consumes them.

Every field has already been checked by the driver's decoder (ranges, encodings): a value
here is well-formed, though it may still be implausible (health checks judge that).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class ChargingState(enum.Enum):
    UNKNOWN = "unknown"
    DISCHARGING = "discharging"
    CHARGING = "charging"
    FULL = "full"
    FAULT = "fault"


class ShiftEventKind(enum.Enum):
    POWER_ON = "power_on"
    POWER_OFF = "power_off"
    DISPLAY_ON = "display_on"
    DISPLAY_OFF = "display_off"
    RECORD_START = "record_start"
    RECORD_STOP = "record_stop"
    DOCKED = "docked"
    UNDOCKED = "undocked"


@dataclass(frozen=True)
class CameraIdentity:
    serial: str
    model: str
    firmware: str
    vendor: str
    #: the camera's own clock when asked (timezone-aware, UTC)
    clock: datetime


@dataclass(frozen=True)
class BatterySnapshot:
    soc_percent: float
    voltage_mv: int
    current_ma: int  # positive = charging
    temperature_c: float
    cycle_count: int
    design_capacity_mah: int
    full_charge_capacity_mah: int
    charging: ChargingState


@dataclass(frozen=True)
class ShiftSample:
    at: datetime  # camera clock
    soc_percent: float
    voltage_mv: int
    current_ma: int
    temperature_c: float


@dataclass(frozen=True)
class ShiftEvent:
    at: datetime  # camera clock
    kind: ShiftEventKind


@dataclass(frozen=True)
class ShiftLog:
    samples: tuple[ShiftSample, ...] = ()
    events: tuple[ShiftEvent, ...] = ()


@dataclass(frozen=True)
class RecordingInfo:
    #: the camera's file name, already checked: printable UTF-8, no path separators, no NUL
    name: str
    size: int
    started: datetime  # camera clock
    duration_s: float
    prerecord_s: float
    #: the camera's own SHA-256 of the plaintext (32 bytes)
    sha256: bytes = field(repr=False)

    @property
    def sha256_hex(self) -> str:
        return self.sha256.hex()


@dataclass(frozen=True)
class RefusedRecording:
    """A listing entry the driver could not accept (a hostile name, an impossible size, a
    name listed twice): refused on its own, so its siblings are still ingested. It is never
    read or deleted; it stays on the camera with `reason`, in the catalog as `refused`."""

    #: the name as the camera sent it, escaped into printable ASCII (`escape_name`)
    label: str
    reason: str
    size: int
    started: datetime  # camera clock
    sha256: bytes = field(repr=False)
    duration_s: float = 0.0
    prerecord_s: float = 0.0


#: what `CameraSession.recordings()` lists: recordings to ingest and entries refused alone
ListingEntry = RecordingInfo | RefusedRecording


def escape_name(raw: bytes, limit: int = 1024) -> str:
    """A camera's raw file name as printable ASCII for people and the catalog: printable
    ASCII stays, everything else (NUL, controls, U+202E, invalid UTF-8, and the backslash
    itself, so two names never share an escape) becomes an escape (`\\x00`, `\\u202e`,
    `\\x5c`), so nothing a camera sends can reorder or hide text on a terminal. A 255-byte
    name needs at most 1020 characters: the limit cuts only what no camera name can be."""
    out = []
    for ch in raw.decode("utf-8", errors="surrogateescape"):
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte that is not UTF-8
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0x20 <= code < 0x7F and ch != "\\":
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    escaped = "".join(out)
    return escaped if len(escaped) <= limit else escaped[: limit - 3] + "..."
