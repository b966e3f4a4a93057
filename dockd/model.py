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
