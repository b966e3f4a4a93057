"""Scenario files: a TOML description of a dock and the cameras docked in it.

Every key is checked here; a mistake is one `ConfigError` naming the file, the key path
(`camera[2].recording[0].size`, indexes from 0) and the problem. docs/simulator.md lists
every key.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, TypeVar

from dockd.errors import ConfigError
from dockd.model import ChargingState, ShiftEventKind
from dockd_sim.shift_profile import SEGMENT_STATES, ShiftProfile, expand_shift
from dockd_sim.spec import (
    FAULT_COMMANDS,
    BatterySpec,
    CameraSpec,
    DockSpec,
    FaultKind,
    FaultSpec,
    HostileSpec,
    PortFaultKind,
    PortFaultSpec,
    RecordingSpec,
    Scenario,
    ShiftEventSpec,
    ShiftSampleSpec,
)

__all__ = ["CameraSpec", "Scenario", "load_scenario"]

T = TypeVar("T")

_PORT_PATH = re.compile(r"^(\d{1,3})-\d{1,3}(\.\d{1,3}){0,5}$")
# a USB string descriptor holds at most 126 UTF-16 code units
_MAX_DESCRIPTOR_BYTES = 252
_MAX_INT = 2**63 - 1
#: what one [camera.shift] may expand into
_MAX_SHIFT_SAMPLES = 50_000
_MAX_SHIFT_SEGMENTS = 10_000


class _Table:
    """One TOML table being read: knows its file and key path, rejects unknown keys."""

    def __init__(self, path: Path, where: str, data: Any) -> None:
        self.path = path
        self.where = where
        if not isinstance(data, dict):
            raise self.error(None, "must be a table")
        self.data: dict[str, Any] = data
        self.used: set[str] = set()

    def key(self, name: str | None) -> str:
        if name is None:
            return self.where
        return f"{self.where}.{name}" if self.where else name

    def error(self, name: str | None, problem: str) -> ConfigError:
        return ConfigError(self.path, self.key(name) or None, problem)

    def has(self, name: str) -> bool:
        return name in self.data

    def raw(self, name: str) -> Any:
        self.used.add(name)
        return self.data.get(name)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")

    # --- typed getters ------------------------------------------------------------

    def _get(self, name: str, default: T | None, required: bool,
             convert: Callable[[Any], T]) -> T | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise self.error(name, "is required")
            return default
        return convert(value)

    def string(self, name: str, default: str | None = None, *, required: bool = False,
               nonempty: bool = True) -> str | None:
        def convert(v: Any) -> str:
            if not isinstance(v, str):
                raise self.error(name, "must be a string")
            if nonempty and not v:
                raise self.error(name, "must not be empty")
            return v
        return self._get(name, default, required, convert)

    def integer(self, name: str, default: int | None = None, *, required: bool = False,
                low: int | None = None, high: int | None = None, what: str = "an integer",
                ) -> int | None:
        def convert(v: Any) -> int:
            if isinstance(v, bool) or not isinstance(v, int):
                raise self.error(name, f"must be {what}")
            lo = low if low is not None else -_MAX_INT
            hi = high if high is not None else _MAX_INT
            if not lo <= v <= hi:
                raise self.error(name, f"must be {what}")
            return v
        return self._get(name, default, required, convert)

    def number(self, name: str, default: float | None = None, *, required: bool = False,
               low: float | None = None, high: float | None = None, what: str = "a number",
               ) -> float | None:
        def convert(v: Any) -> float:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise self.error(name, f"must be {what}")
            f = float(v)
            if not math.isfinite(f):
                raise self.error(name, f"must be {what}")
            if (low is not None and f < low) or (high is not None and f > high):
                raise self.error(name, f"must be {what}")
            return f
        return self._get(name, default, required, convert)

    def tables(self, name: str) -> list[_Table]:
        value = self.raw(name)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(name, f"must be an array of tables ([[{self.key(name)}]])")
        return [_Table(self.path, f"{self.key(name)}[{i}]", item) for i, item in
                enumerate(value)]

    def table(self, name: str) -> _Table | None:
        value = self.raw(name)
        if value is None:
            return None
        return _Table(self.path, self.key(name), value)


def load_scenario(path: Path) -> Scenario:
    """Read and check a scenario file. Raises ConfigError on any problem."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(path, None, f"cannot read: {e.strerror or e}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(path, None, f"not valid TOML: {e}") from e
    root = _Table(path.absolute(), "", data)
    dock_table = root.table("dock")
    dock = _dock(dock_table) if dock_table is not None else DockSpec()
    cameras = tuple(_camera(t, dock) for t in root.tables("camera"))
    if not cameras:
        raise root.error("camera", "at least one [[camera]] is required")
    root.finish()
    return Scenario(path=path.absolute(), dock=dock, cameras=cameras)


def _dock(t: _Table) -> DockSpec:
    name = t.string("name", "dock-a")
    slots = t.integer("slots", 8, low=1, high=255, what="an integer from 1 to 255")
    bus = t.integer("bus", 1, low=1, high=255, what="an integer from 1 to 255")
    assert name is not None and slots is not None and bus is not None
    hub = t.string("hub_port_path", f"{bus}-1")
    assert hub is not None
    match = _PORT_PATH.match(hub)
    if match is None:
        raise t.error("hub_port_path", 'must be a USB port path like "1-1" or "1-1.4"')
    if int(match.group(1)) != bus:
        raise t.error("hub_port_path", f"must start with the bus number ({bus}-)")
    port_faults = tuple(_port_fault(f, slots) for f in t.tables("port_fault"))
    driver = t.string("driver")
    t.finish()
    return DockSpec(name=name, slots=slots, bus=bus, hub_port_path=hub, port_faults=port_faults,
                    driver=driver)


def _port_fault(t: _Table, slots: int) -> PortFaultSpec:
    slot = _req(t.integer("slot", required=True, low=1, high=slots,
                          what=f"an integer from 1 to dock.slots ({slots})"))
    if not t.has("kind"):
        raise t.error("kind", "is required")
    kind = _choice(t, "kind", "", (k.value for k in PortFaultKind))
    rate = _req(t.number("rate", required=True, low=0, high=1, what="a number from 0 to 1"))
    seed = _req(t.integer("seed", 0, low=0, what="a non-negative integer"))
    t.finish()
    return PortFaultSpec(slot=slot, kind=PortFaultKind(kind), rate=rate, seed=seed)


def _camera(t: _Table, dock: DockSpec) -> CameraSpec:
    serial = t.string("serial", required=True)
    assert serial is not None
    if len(serial.encode("utf-16-le")) > _MAX_DESCRIPTOR_BYTES:
        raise t.error("serial", "is too long for a USB string descriptor (126 characters)")
    slot = t.integer("slot", required=True, low=1, high=dock.slots,
                     what=f"an integer from 1 to dock.slots ({dock.slots})")
    assert slot is not None
    firmware = t.string("firmware", "3.2.1")
    model = t.string("model")
    driver = t.string("driver", dock.driver)
    clock_offset = t.number("clock_offset_s", 0.0)
    dock_at = t.number("dock_at_s", 0.0, low=0, what="a number >= 0")
    assert dock_at is not None
    undock_at = t.number("undock_at_s", None, low=0, what="a number >= 0")
    if undock_at is not None and undock_at < dock_at:
        raise t.error("undock_at_s", "must not be before dock_at_s")
    link = t.number("link_mb_s", 0.0, low=0, what="a number >= 0 (0 = unlimited)")
    redock = t.number("redock_after_s", None, low=0, what="a number >= 0")
    battery_table = t.table("battery")
    battery = _battery(battery_table) if battery_table is not None else BatterySpec()
    recordings = tuple(_recording(r) for r in t.tables("recording"))
    names = {r.name for r in recordings}
    faults = tuple(_fault(f, names) for f in t.tables("fault"))
    samples = tuple(_sample(s) for s in t.tables("shift_sample"))
    events = tuple(_event(e) for e in t.tables("shift_event"))
    shift_table = t.table("shift")
    if shift_table is not None:
        more_samples, more_events = expand_shift(_shift_profile(shift_table))
        samples = tuple(sorted(samples + more_samples, key=lambda x: x.offset_s))
        events = tuple(sorted(events + more_events, key=lambda x: x.offset_s))
    day = _req(t.integer("day", 0, low=0, high=36_500, what="an integer from 0 to 36500"))
    hostile_table = t.table("hostile")
    hostile = _hostile(hostile_table) if hostile_table is not None else HostileSpec()
    t.finish()
    assert firmware is not None and clock_offset is not None and link is not None
    return CameraSpec(
        serial=serial, slot=slot, firmware=firmware, model=model, driver=driver,
        clock_offset_s=clock_offset, dock_at_s=dock_at, undock_at_s=undock_at,
        link_mb_s=link, redock_after_s=redock, battery=battery, recordings=recordings,
        faults=faults,
        shift_samples=samples, shift_events=events, day=day, hostile=hostile,
    )


#: extra_bytes is capped so the simulated firmware itself stays small (one data block)
_MAX_EXTRA_BYTES = 1 << 20


def _hostile(t: _Table) -> HostileSpec:
    """`[camera.hostile]`: broken firmware behaviour (docs/simulator.md)."""
    claimed = t.integer("claimed_size", None, low=0, what="a non-negative integer")
    extra = _req(t.integer("extra_bytes", 0, low=0, high=_MAX_EXTRA_BYTES,
                           what=f"an integer from 0 to {_MAX_EXTRA_BYTES}"))
    spec = HostileSpec(
        claimed_size=claimed, extra_bytes=extra,
        endless_listing=_flag(t, "endless_listing"),
        slower_and_slower=_flag(t, "slower_and_slower"),
        soc_percent=t.number("soc_percent"),
        voltage_mv=t.integer("voltage_mv", None, low=-(2**31), high=2**31 - 1,
                             what="a 32-bit integer"),
        temperature_c=t.number("temperature_c"),
    )
    t.finish()
    return spec


def _flag(t: _Table, name: str) -> bool:
    value = t.raw(name)
    if value is not None and not isinstance(value, bool):
        raise t.error(name, "must be true or false")
    return bool(value)


def _choice(t: _Table, name: str, default: str, allowed: Iterable[str]) -> str:
    options = list(allowed)
    value = t.string(name, default)
    assert value is not None
    if value not in options:
        raise t.error(name, "must be one of " + ", ".join(options))
    return value


def _battery(t: _Table) -> BatterySpec:
    d = BatterySpec()
    percent = "a number from 0 to 100"
    nonneg = "a non-negative integer"
    spec = BatterySpec(
        soc_percent=_req(t.number("soc_percent", d.soc_percent, low=0, high=100, what=percent)),
        voltage_mv=_req(t.integer("voltage_mv", d.voltage_mv, low=0, high=100_000, what=
                                  "an integer from 0 to 100000")),
        current_ma=_req(t.integer("current_ma", d.current_ma, low=-100_000, high=100_000,
                                  what="an integer from -100000 to 100000")),
        temperature_c=_req(t.number("temperature_c", d.temperature_c, low=-100, high=200,
                                    what="a number from -100 to 200")),
        cycle_count=_req(t.integer("cycle_count", d.cycle_count, low=0, what=nonneg)),
        design_capacity_mah=_req(t.integer("design_capacity_mah", d.design_capacity_mah,
                                           low=0, what=nonneg)),
        full_charge_capacity_mah=_req(t.integer("full_charge_capacity_mah",
                                                d.full_charge_capacity_mah, low=0,
                                                what=nonneg)),
        charging=_choice(t, "charging", d.charging, (c.value for c in ChargingState)),
        # up to 100 000 %/h: a test's dock may charge a camera in seconds
        charge_percent_per_h=_req(t.number("charge_percent_per_h", 0.0, low=0, high=100_000,
                                           what="a number from 0 to 100000")),
        stops_charging_after_s=t.number("stops_charging_after_s", None, low=0,
                                        what="a number >= 0"),
        resumes_charging_after_s=t.number("resumes_charging_after_s", None, low=0,
                                          what="a number >= 0"),
    )
    if spec.resumes_charging_after_s is not None and (
            spec.stops_charging_after_s is None
            or spec.resumes_charging_after_s < spec.stops_charging_after_s):
        raise t.error("resumes_charging_after_s", "needs stops_charging_after_s, and must "
                                                  "not be before it")
    t.finish()
    return spec


def _req(value: T | None) -> T:
    assert value is not None  # every caller passes a default
    return value


def _raw_name(t: _Table, key: str, *, required: bool) -> bytes | None:
    """A camera file name given as text (`key`) or as raw bytes in hex (`key_hex`)."""
    hex_key = f"{key}_hex"
    if t.has(key) and t.has(hex_key):
        raise t.error(hex_key, f"give either {key} or {hex_key}, not both")
    if t.has(hex_key):
        text = t.string(hex_key)
        assert text is not None
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise t.error(hex_key, "must be hexadecimal bytes, e.g. \"41 00 42\"") from None
        if not raw:
            raise t.error(hex_key, "must not be empty")
        return raw
    text = t.string(key, required=False)
    if text is None:
        if required:
            raise t.error(key, f"is required (or {hex_key})")
        return None
    return text.encode("utf-8")


def _timestamp(t: _Table, name: str) -> datetime:
    value = t.raw(name)
    if value is None:
        raise t.error(name, "is required")
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise t.error(name, 'must be an RFC 3339 time, e.g. "2026-11-25T14:02:11Z"') from None
    elif isinstance(value, datetime):
        when = value
    elif isinstance(value, date | time):
        raise t.error(name, "must be a full date and time with a UTC offset")
    else:
        raise t.error(name, "must be an RFC 3339 time string or a TOML date-time")
    if when.tzinfo is None or when.utcoffset() is None:
        raise t.error(name, 'must include a UTC offset (e.g. "Z" or "+01:00")')
    return when.astimezone(UTC)


def _recording(t: _Table) -> RecordingSpec:
    name = _raw_name(t, "name", required=True)
    assert name is not None
    started = _timestamp(t, "started")
    duration = _req(t.number("duration_s", 0.0, low=0, what="a number >= 0"))
    prerecord = _req(t.number("prerecord_s", 0.0, low=0, what="a number >= 0"))
    source: Path | None = None
    size: int | None = None
    seed = 0
    if t.has("source"):
        if t.has("size") or t.has("seed"):
            raise t.error("source", "give either source or size (and seed), not both")
        text = t.string("source")
        assert text is not None
        source = (t.path.parent / text).absolute()
        if not source.is_file():
            raise t.error("source", f"no such file: {source}")
    else:
        size = t.integer("size", required=False, low=0, what="a non-negative integer")
        if size is None:
            raise t.error("size", "is required (or source)")
        seed = _req(t.integer("seed", 0, low=0, what="a non-negative integer"))
    t.finish()
    return RecordingSpec(name=name, started=started, duration_s=duration,
                         prerecord_s=prerecord, source=source, size=size, seed=seed)


def _fault(t: _Table, names: set[bytes]) -> FaultSpec:
    kind_text = _choice(t, "kind", "", (k.value for k in FaultKind)) if t.has("kind") else None
    if kind_text is None:
        raise t.error("kind", "is required")
    recording = _raw_name(t, "recording", required=False)
    if recording is not None and recording not in names:
        key = "recording_hex" if t.has("recording_hex") else "recording"
        raise t.error(key, "must name one of this camera's recordings")
    at_byte = _req(t.integer("at_byte", 0, low=0, what="a non-negative integer"))
    times: int | None
    if t.raw("times") == "always":
        times = None
    else:
        times = t.integer("times", 1, low=1, what='an integer >= 1 or "always"')
    delay = _req(t.number("delay_s", FaultSpec.delay_s, low=0, high=3600,
                          what="a number from 0 to 3600"))
    command = _choice(t, "command", "", FAULT_COMMANDS) if t.has("command") else None
    if command is not None and recording is not None:
        raise t.error("command", "binds the fault to a command: give it or a recording, "
                      "not both")
    t.finish()
    return FaultSpec(kind=FaultKind(kind_text), recording=recording, at_byte=at_byte,
                     times=times, delay_s=delay, command=command)


def _sample(t: _Table) -> ShiftSampleSpec:
    spec = ShiftSampleSpec(
        offset_s=_req(t.number("offset_s", required=True)),
        soc_percent=_req(t.number("soc_percent", required=True, low=0, high=100,
                                  what="a number from 0 to 100")),
        voltage_mv=_req(t.integer("voltage_mv", required=True, low=0, high=100_000,
                                  what="an integer from 0 to 100000")),
        current_ma=_req(t.integer("current_ma", required=True, low=-100_000, high=100_000,
                                  what="an integer from -100000 to 100000")),
        temperature_c=_req(t.number("temperature_c", required=True, low=-100, high=200,
                                    what="a number from -100 to 200")),
    )
    t.finish()
    return spec


def _event(t: _Table) -> ShiftEventSpec:
    offset = _req(t.number("offset_s", required=True))
    if not t.has("kind"):
        raise t.error("kind", "is required")
    kind = _choice(t, "kind", "", (k.value for k in ShiftEventKind))
    t.finish()
    return ShiftEventSpec(offset_s=offset, kind=kind)


def _shift_profile(t: _Table) -> ShiftProfile:
    """`[camera.shift]`: a whole shift described by its segments, expanded into samples and
    events (see docs/simulator.md)."""
    percent = "a number from 0 to 100"
    start_soc = _req(t.number("start_soc", 100.0, low=0, high=100, what=percent))
    raw = t.raw("segments")
    if not isinstance(raw, list) or not raw:
        raise t.error("segments", 'is required: e.g. [["standby", 2.0, 4.0], ...] '
                                  "(state, hours, % drained per hour)")
    segments: list[tuple[str, float, float]] = []
    for i, seg in enumerate(raw):
        ok = (isinstance(seg, list) and len(seg) == 3 and seg[0] in SEGMENT_STATES
              and all(isinstance(v, int | float) and not isinstance(v, bool)
                      and math.isfinite(v) for v in seg[1:]) and 0 < seg[1] <= 72
              and 0 <= seg[2] <= 1000)
        if not ok:
            raise t.error(f"segments[{i}]", "must be [state, hours (0-72], % per hour 0-1000] "
                                            "with state one of " + ", ".join(SEGMENT_STATES))
        segments.append((seg[0], float(seg[1]), float(seg[2])))
    repeat = _req(t.integer("repeat", 1, low=1, high=100, what="an integer from 1 to 100"))
    every = _req(t.number("sample_every_min", 30.0, low=1, high=1440,
                          what="a number from 1 to 1440"))
    temp = _req(t.number("temperature_c", 25.0, low=-100, high=200,
                         what="a number from -100 to 200"))
    rise = _req(t.number("temp_rise_c", 3.0, low=-100, high=200,
                         what="a number from -100 to 200"))
    dock_hours = _req(t.number("dock_hours", 0.0, low=0, high=240,
                               what="a number from 0 to 240"))
    dock_start = _req(t.number("dock_start_soc", max(0.0, start_soc - 60), low=0, high=100,
                               what=percent))
    gap = _req(t.number("ends_before_dock_min", 0.0, low=0, high=10_000,
                        what="a number from 0 to 10000"))
    # a file of a few lines must not expand into millions of samples (memory, minutes)
    samples = (sum(h for _, h, _ in segments) * repeat + dock_hours) * 60 / every
    if samples > _MAX_SHIFT_SAMPLES or len(segments) * repeat > _MAX_SHIFT_SEGMENTS:
        raise t.error(None, f"expands to {samples:.0f} samples and {len(segments) * repeat} "
                            f"segments (limits {_MAX_SHIFT_SAMPLES} and "
                            f"{_MAX_SHIFT_SEGMENTS}): sample less often or shorten it")
    t.finish()
    return ShiftProfile(start_soc=start_soc, segments=tuple(segments) * repeat,
                        sample_every_min=every, temperature_c=temp, temp_rise_c=rise,
                        dock_hours=dock_hours, dock_start_soc=dock_start,
                        ends_before_dock_min=gap)
