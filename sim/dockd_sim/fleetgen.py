"""Seeded fleets of many shapes, healthy or with seeded faults, for measuring dockd's health
findings (issue 14; `scripts/health_rates`, docs/health.md "How often it is right").

`generate(seed, faults=k)` writes a fleet scenario (docs/simulator.md) that
`dockd_sim.fleet.run_fleet` plays through the real stack, and says which findings it seeded
and on which subject (camera serial, dock port, the store). The same seed gives the same
fleet. Fleets vary in what a technician meets: battery models of 2200-5000 mAh at different
ages, day, long (12 h) and night shifts, cold weather (a battery cooling to a few degrees on
patrol) and summer heat, fuel gauges that re-learn their capacity by up to two points, days
off, cameras docked in whichever port is free, clocks a few seconds off, the odd transient
transfer failure a retry fixes, and docks that charge at different rates.

A healthy fleet is healthy by construction: every battery lasts its shift with room to spare
and charges on the dock, nothing runs hot, no port or camera fails more than once in a
while, every camera docks at least every three days, the store lasts for months. A faulty
fleet is a healthy one with 1-3 faults seeded on distinct subjects, each of the kind one
finding is for (`FAULTS`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd.catalog import Catalog
from dockd.config import Config, HealthConfig, IngestConfig, StorageConfig
from dockd.crypto.keys import generate_identity, parse_recipient
from dockd.health.capture import DiskUsage, DiskUsageFn
from dockd_sim.fleet import FleetClock, run_fleet
from dockd_sim.scenario import load_scenario

GB = 10**9
DOCK = "dock-gen"
STORE = "<store>"


@dataclass(frozen=True)
class BatteryModel:
    name: str
    design_mah: int
    #: drain in % of a full charge per hour: standby, display on, recording
    drains: tuple[float, float, float]


MODELS = (
    BatteryModel("BC-200", 2200, (4.0, 11.0, 16.0)),
    BatteryModel("BC-300", 3000, (3.0, 8.5, 12.5)),
    BatteryModel("BC-450", 4500, (2.2, 6.0, 9.0)),
    BatteryModel("BC-500", 5000, (2.0, 5.5, 8.0)),
)

#: shift kinds: hours, start temperature range, temperature change over the shift
SHIFTS: dict[str, tuple[float, tuple[float, float], tuple[float, float]]] = {
    "day": (10.0, (19.0, 25.0), (1.0, 8.0)),
    "long": (12.0, (19.0, 24.0), (1.0, 6.0)),
    "night": (10.0, (18.0, 22.0), (-18.0, -12.0)),  # a winter night patrol: cools to 2-8 °C
    "cold": (10.0, (8.0, 14.0), (-8.0, -3.0)),
    "summer": (10.0, (27.0, 32.0), (3.0, 9.0)),
}

#: the faults a faulty fleet may carry: the finding each is for, and what it names
FAULTS = (
    "battery_soh", "battery_soh_trend", "battery_cycles", "battery_implausible",
    "shift_endurance_ran_out", "shift_endurance_short", "battery_hot", "battery_temp_rise",
    "charging_stalled", "dock_not_charging", "transfer_camera", "transfer_port",
    "clock_drift", "overdue", "listing_refused", "recordings_refused", "storage_low",
)


@dataclass(frozen=True)
class Seeded:
    fault: str
    #: the finding that must name it, and its subject (a serial, a port, or STORE)
    code: str
    subject: str


@dataclass
class Docking:
    serial: str
    day: int
    slot: int
    clock_offset_s: float
    battery: dict[str, Any]
    shift: dict[str, Any]
    recordings: list[dict[str, Any]]
    faults: list[dict[str, Any]] = field(default_factory=list)
    hostile: dict[str, Any] = field(default_factory=dict)


@dataclass
class Camera:
    serial: str
    model: BatteryModel
    soh: float  # full / design, 0-1
    cycles: int
    days: list[int]
    kinds: list[str]  # shift kind per docking day
    #: full-charge capacity per docking (wear, gauge re-learns)
    full_mah: list[int] = field(default_factory=list)
    home_slot: int | None = None


@dataclass
class GeneratedFleet:
    seed: int
    faulty: bool
    days: int
    toml: str
    seeded: list[Seeded]
    #: the store's free bytes on day 0 and lost per day (the host's disk readings)
    disk_free0: float
    disk_per_day: float
    shape: dict[str, Any]

    def disk_usage(self, day: int) -> DiskUsageFn:
        free = int(self.disk_free0 - self.disk_per_day * day)
        return lambda _path: DiskUsage(1000 * GB, 1000 * GB - free, free)

    @property
    def disk(self) -> Callable[[int], DiskUsageFn]:
        return self.disk_usage


def generate(seed: int, *, faults: int = 0) -> GeneratedFleet:
    """A fleet from `seed`; `faults` > 0 seeds that many faults (1-3) on distinct subjects."""
    return _Builder(seed, faults).build()


class _Builder:
    def __init__(self, seed: int, faults: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.n_faults = faults
        self.dockings: list[Docking] = []
        self.seeded: list[Seeded] = []
        self.port_faults: list[dict[str, Any]] = []
        #: (serial, day) → the port it must dock in that day (faults that need witnesses)
        self._forced: dict[tuple[str, int], int] = {}

    # --- the healthy fleet ----------------------------------------------------------------

    def build(self) -> GeneratedFleet:
        rng = self.rng
        self.days = rng.randint(6, 8)
        n_cams = rng.randint(5, 7)
        self.slots = n_cams + rng.randint(2, 5)
        prefix = f"G{self.seed % 1000:03d}"
        self.cameras = [self._camera(f"{prefix}-{i + 1:02d}") for i in range(n_cams)]
        self.disk_free0 = rng.uniform(500, 850) * GB
        self.disk_per_day = rng.uniform(0.5, 6) * GB
        faults = self._pick_faults() if self.n_faults else []
        self._place()
        for cam in self.cameras:
            for i, day in enumerate(cam.days):
                self.dockings.append(self._docking(cam, i, day))
        for fault, subject in faults:
            self._seed(fault, subject)
        self.dockings.sort(key=lambda d: (d.day, d.slot))
        shape = {"days": self.days, "cameras": n_cams, "slots": self.slots,
                 "models": sorted({c.model.name for c in self.cameras}),
                 "shifts": sorted({k for c in self.cameras for k in c.kinds}),
                 "relearns": sum(1 for c in self.cameras if len(set(c.full_mah)) > 1),
                 "days_off": sum(self.days - len(c.days) for c in self.cameras)}
        return GeneratedFleet(self.seed, bool(self.n_faults), self.days, self._toml(),
                              self.seeded, self.disk_free0, self.disk_per_day, shape)

    def _camera(self, serial: str) -> Camera:
        rng = self.rng
        model = rng.choice(MODELS)
        days = [0]
        off_run = 0
        for day in range(1, self.days):
            last = day == self.days - 1
            if not last and off_run < 2 and rng.random() < 0.22:  # a day off (two at most)
                off_run += 1
                continue
            off_run = 0
            days.append(day)
        usual = rng.choice(["day", "day", "long", "night", "cold", "summer"])
        kinds = [usual if rng.random() < 0.75 else rng.choice(list(SHIFTS)) for _ in days]
        cam = Camera(serial, model, rng.uniform(0.86, 0.99), rng.randint(10, 420), days, kinds)
        full = cam.soh * model.design_mah
        wear = rng.uniform(0, 0.4)  # mAh a day: months to lose a point
        relearn_at = rng.randrange(1, len(days)) if rng.random() < 0.5 else None
        step = rng.choice([-1, 1]) * rng.uniform(10, 0.02 * model.design_mah)
        bounce = rng.random() < 0.3  # a gauge that wobbles by a few mAh between docks
        for i, day in enumerate(days):
            f = full - wear * day + (step if relearn_at is not None and i >= relearn_at else 0)
            if bounce:
                f += rng.uniform(-0.004, 0.004) * model.design_mah
            cam.full_mah.append(round(f))
        if rng.random() < 0.5:
            cam.home_slot = rng.randint(1, self.slots)
        return cam

    def _place(self) -> None:
        """Each day's cameras in distinct ports: a camera's home port when free, else any."""
        self.slot_of: dict[tuple[str, int], int] = {}
        for day in range(self.days):
            free = list(range(1, self.slots + 1))
            today = [c for c in self.cameras if day in c.days]
            self.rng.shuffle(today)
            for cam in sorted(today, key=lambda c: ((c.serial, day) not in self._forced,
                                                    c.home_slot is None)):
                fixed = self._forced.get((cam.serial, day))
                slot = (fixed if fixed in free else cam.home_slot
                        if cam.home_slot in free and self.rng.random() < 0.7
                        else self.rng.choice(free))
                assert slot is not None
                free.remove(slot)
                self.slot_of[cam.serial, day] = slot

    def _docking(self, cam: Camera, i: int, day: int) -> Docking:
        rng = self.rng
        kind = cam.kinds[i]
        hours, temp_range, rise_range = SHIFTS[kind]
        temp0 = rng.uniform(*temp_range)
        rise = rng.uniform(*rise_range)
        scale = cam.model.design_mah * 0.93 / cam.full_mah[i]  # a worn battery drains faster
        segments, used = self._segments(cam.model, hours, scale)
        end_soc = 100 - used
        end_temp = temp0 + rise
        dock_temp = min(40.0, max(end_temp, 2.0) + rng.uniform(0, 3))
        soc = round(max(1.0, end_soc), 1)
        battery = {
            "soc_percent": soc, "voltage_mv": int(3300 + 9 * soc),
            "current_ma": rng.randint(300, 1400), "temperature_c": round(dock_temp, 1),
            "cycle_count": cam.cycles + day, "design_capacity_mah": cam.model.design_mah,
            "full_charge_capacity_mah": cam.full_mah[i], "charging": "charging",
            "charge_percent_per_h": round(rng.uniform(25, 60), 1)}
        shift = {
            "start_soc": 100, "segments": segments, "sample_every_min": rng.choice([15, 20, 30]),
            "temperature_c": round(temp0, 1), "temp_rise_c": round(rise, 1),
            "dock_hours": round(rng.uniform(1.5, 6), 1),
            "dock_start_soc": round(rng.uniform(15, 60), 1),
            "ends_before_dock_min": rng.choice([0, 0, 10, 45])}
        recordings = [{"name": f"{cam.serial}_D{day}_{n}.MP4",
                       "size": rng.randint(40_000, 160_000), "seed": rng.randint(0, 10**6),
                       "started": f"2026-10-{1 + day:02d}T{8 + n:02d}:00:00Z",
                       "duration_s": 30} for n in range(rng.randint(1, 3))]
        d = Docking(cam.serial, day, self.slot_of[cam.serial, day],
                    round(rng.uniform(-10, 10), 2), battery, shift, recordings)
        if rng.random() < 0.08:  # a transient glitch: one corrupt read, a retry fixes it
            d.faults.append({"kind": "corrupt", "recording": recordings[0]["name"], "times": 1})
        return d

    def _segments(self, model: BatteryModel, hours: float, scale: float,
                  budget: float = 78.0) -> tuple[list[list[Any]], float]:
        """A shift's segments (standby, display, recording) repeated to `hours`, using at
        most `budget` % of a full charge (a healthy battery lasts with room to spare)."""
        rng = self.rng
        repeat = rng.randint(2, 5)
        rec, disp = rng.uniform(0.05, 0.25), rng.uniform(0.05, 0.2)
        shares = {"standby": 1 - rec - disp, "display": disp, "recording": rec}
        drains = dict(zip(("standby", "display", "recording"), model.drains, strict=True))
        drains = {k: v * scale * rng.uniform(0.85, 1.15) for k, v in drains.items()}
        avg = sum(shares[k] * drains[k] for k in shares)
        limit = min(budget / hours, 100 / 11.5)  # and a full charge lasts ≥ 11.5 h
        if avg > limit:
            drains = {k: v * limit / avg for k, v in drains.items()}
            avg = limit
        part = hours / repeat
        order = ("standby", "display", "recording")
        segs: list[list[Any]] = [[k, round(part * shares[k], 3), round(drains[k], 2)]
                                 for k in order]
        used = sum(round(part * shares[k], 3) * round(drains[k], 2) for k in order) * repeat
        return [list(seg) for _ in range(repeat) for seg in segs], used

    # --- faults --------------------------------------------------------------------------

    def _pick_faults(self) -> list[tuple[str, str]]:
        rng = self.rng
        kinds = rng.sample(FAULTS, self.n_faults)
        serials = [c.serial for c in self.cameras]
        rng.shuffle(serials)
        out = []
        for kind in kinds:
            if kind == "storage_low":
                out.append((kind, STORE))
            elif kind == "transfer_port":
                out.append((kind, str(rng.randint(1, self.slots))))
            else:
                out.append((kind, serials.pop()))
        self._prepare(out)
        return out

    def _prepare(self, faults: list[tuple[str, str]]) -> None:
        """What must hold before the ports are chosen: a faulty port sees three cameras, a
        faulty camera three ports, an overdue camera stops docking."""
        rng = self.rng
        cams = {c.serial: c for c in self.cameras}
        seeded_cams = {s for k, s in faults if k not in ("storage_low", "transfer_port")}
        for kind, subject in faults:
            if kind == "transfer_port":
                slot = int(subject)
                witnesses = [c for c in self.cameras if c.serial not in seeded_cams]
                for cam in rng.sample(witnesses, 3):
                    day = rng.choice(cam.days[:-1] or cam.days)
                    if any(v == slot and d == day for (_, d), v in self._forced.items()):
                        day = cam.days[-1]
                    self._forced[cam.serial, day] = slot
                for cam in self.cameras:  # nobody calls it home
                    if cam.home_slot == slot:
                        cam.home_slot = None
            elif kind == "transfer_camera":
                cam = cams[subject]
                cam.home_slot = None
                free = [s for s in range(1, self.slots + 1)]
                rng.shuffle(free)
                for day, slot in zip(cam.days[-3:], free, strict=False):
                    self._forced[cam.serial, day] = slot
            elif kind == "overdue":
                cam = cams[subject]
                cam.days = [d for d in cam.days if d <= self.days - 1 - rng.randint(4, 5)] or [0]
                cam.kinds = cam.kinds[:len(cam.days)]
                cam.full_mah = cam.full_mah[:len(cam.days)]
            elif kind == "battery_soh_trend":
                cam = cams[subject]
                per_day = rng.uniform(1.2, 2.0) / 100 * cam.model.design_mah
                top = 0.97 * cam.model.design_mah
                cam.full_mah = [round(top - per_day * d) for d in cam.days]
            elif kind == "battery_soh":
                cam = cams[subject]
                soh = rng.uniform(0.6, 0.77)
                cam.full_mah = [round(soh * cam.model.design_mah) for _ in cam.days]
            elif kind == "battery_cycles":
                cams[subject].cycles = rng.randint(520, 900)

    def _seed(self, kind: str, subject: str) -> None:
        rng = self.rng
        code = kind.removesuffix("_ran_out").removesuffix("_short")
        mine = [d for d in self.dockings if d.serial == subject]
        last = mine[-1] if mine else None
        if kind == "storage_low":
            final = self.days - 1
            free_final = rng.uniform(20, 150) * GB
            self.disk_per_day = rng.uniform(25, 60) * GB
            self.disk_free0 = free_final + self.disk_per_day * final
        elif kind == "transfer_port":
            slot = int(subject)
            self.port_faults.append({"slot": slot, "kind": "read_error",
                                     "rate": round(rng.uniform(0.5, 0.9), 2),
                                     "seed": rng.randint(0, 1000)})
            for d in self.dockings:  # big enough that a worn contact shows on every one
                if d.slot == slot:
                    for r in d.recordings:
                        r["size"] = max(r["size"], 120_000)
            subject = f"{DOCK}/{subject}"
        elif kind == "transfer_camera":
            for d in mine[-3:]:
                d.faults = [{"kind": "read_error", "recording": r["name"], "times": "always"}
                            for r in d.recordings]
        elif kind == "battery_implausible":
            assert last is not None
            if rng.random() < 0.5:
                last.battery["voltage_mv"] = rng.choice([1200, 24000, 65000])
            else:
                last.battery["full_charge_capacity_mah"] = 2 * last.battery[
                    "design_capacity_mah"]
        elif kind == "shift_endurance_ran_out":
            assert last is not None
            last.shift["segments"] = [["standby", 1.0, rng.uniform(4, 6)],
                                      ["display", 1.0, rng.uniform(20, 28)]] * 5
        elif kind == "shift_endurance_short":
            assert last is not None  # a short shift that a full charge could not do twice
            hours = rng.uniform(5, 7)
            avg = rng.uniform(11.5, 13.5)
            last.shift["segments"] = [["standby", hours / 2, avg * 0.6],
                                      ["recording", hours / 2, avg * 1.4]]
        elif kind == "battery_hot":
            assert last is not None
            last.battery["temperature_c"] = round(rng.choice(
                [rng.uniform(47, 53), rng.uniform(56, 60)]), 1)
        elif kind == "battery_temp_rise":
            assert last is not None
            last.shift["temperature_c"] = round(rng.uniform(22, 25), 1)
            last.shift["temp_rise_c"] = round(rng.uniform(17, 19), 1)
            last.battery["temperature_c"] = round(last.shift["temperature_c"]
                                                  + last.shift["temp_rise_c"], 1)
        elif kind == "charging_stalled":
            assert last is not None
            if rng.random() < 0.5:
                last.battery["charging"] = "fault"
            else:  # the dock stretch before the shift did not charge it
                soc = round(rng.uniform(55, 75), 1)
                last.shift["start_soc"] = last.shift["dock_start_soc"] = soc
                last.shift["dock_hours"] = round(rng.uniform(1.5, 4), 1)
                for seg in last.shift["segments"]:
                    seg[2] = round(seg[2] * 0.5, 2)  # light use: it does not run out
        elif kind == "dock_not_charging":
            assert last is not None
            last.battery["soc_percent"] = round(rng.uniform(20, 70), 1)
            last.battery["stops_charging_after_s"] = round(rng.uniform(0, 600))
        elif kind == "clock_drift":
            assert last is not None
            last.clock_offset_s = rng.choice([-1, 1]) * round(rng.uniform(120, 3600))
        elif kind == "listing_refused":
            assert last is not None
            last.hostile["endless_listing"] = True
        elif kind == "recordings_refused":
            assert last is not None
            last.recordings.append({"name": f"{subject}_\\u0007bell.MP4", "size": 1000,
                                    "seed": 1, "started": "2026-10-01T07:00:00Z"})
        self.seeded.append(Seeded(kind, code, subject))

    # --- the scenario file -----------------------------------------------------------------

    def _toml(self) -> str:
        out = [f"# generated by dockd_sim.fleetgen, seed {self.seed}, "
               f"{'faulty' if self.n_faults else 'healthy'}",
               f'[dock]\ndriver = "netco"\nname = "{DOCK}"\nslots = {self.slots}\n']
        for pf in self.port_faults:
            out.append("[[dock.port_fault]]\n" + _table(pf))
        for d in self.dockings:
            out.append(f'[[camera]]\nserial = "{d.serial}"\nslot = {d.slot}\nday = {d.day}\n'
                       f"clock_offset_s = {d.clock_offset_s}\n")
            out.append("[camera.battery]\n" + _table(d.battery))
            out.append("[camera.shift]\n" + _table(d.shift))
            if d.hostile:
                out.append("[camera.hostile]\n" + _table(d.hostile))
            for r in d.recordings:
                out.append("[[camera.recording]]\n" + _table(r))
            for f in d.faults:
                out.append("[[camera.fault]]\n" + _table(f))
        return "\n".join(out)


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, float):
        return repr(round(v, 3))
    return str(v)


def _table(values: dict[str, Any]) -> str:
    return "".join(f"{k} = {_value(v)}\n" for k, v in values.items())


# --- playing a generated fleet and scoring what dockd found -------------------------------


@dataclass(frozen=True)
class Raised:
    day: int
    code: str
    subject: str  # STORE for the store
    severity: str
    #: judged while the day's cameras were still on the dock (the charge watch)
    docked: bool


@dataclass
class Outcome:
    fleet: GeneratedFleet
    raised: list[Raised]
    errors: list[str]
    seconds: float

    def alarms(self) -> list[Raised]:
        """Warnings and criticals on a subject no fault was seeded on (all of a healthy
        fleet's), on any day."""
        seeded = {s.subject for s in self.fleet.seeded}
        return [r for r in self.raised
                if r.severity in ("warning", "critical") and r.subject not in seeded]

    def found(self, s: Seeded) -> bool:
        """The seeded fault's finding names its culprit at the fleet's last judgement (or
        while its camera was still on the dock, for "not charging on this dock")."""
        last = self.fleet.days - 1
        return any(r.code == s.code and r.subject == s.subject and r.day == last
                   and r.severity in ("warning", "critical") for r in self.raised)


def play(fleet: GeneratedFleet, root: Path, *, watch_min: float | None = 50.0,
         health: HealthConfig | None = None) -> Outcome:
    """Play `fleet` through the real stack into a fresh catalog and store under `root`."""
    started = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    scenario_path = root / "fleet.toml"
    scenario_path.write_text(fleet.toml)
    store = root / "evidence"
    store.mkdir()
    _secret, recipient = generate_identity()
    config = Config(storage=StorageConfig(path=store, min_free_mib=0),
                    ingest=IngestConfig(retry_delay_s=0, transfer_timeout_s=0.5, max_retries=3),
                    health=health or HealthConfig())
    clock = FleetClock()
    catalog = Catalog.open(f"sqlite:///{root / 'catalog.sqlite'}", clock=clock)
    try:
        days = run_fleet(load_scenario(scenario_path), catalog, clock, config,
                         [parse_recipient(recipient)], root / "sim-state",
                         disk_usage=fleet.disk_usage, watch_min=watch_min)
    finally:
        catalog.close()
    raised = []
    for d in days:
        for docked, found in ((False, d.findings), (True, d.docked_findings)):
            raised += [Raised(d.day, f.code, STORE if f.subject == str(store) else f.subject,
                              f.severity.name.lower(), docked) for f in found]
    return Outcome(fleet, raised, [e for d in days for e in d.errors],
                   time.monotonic() - started)
