#!/usr/bin/env python3
"""How often dockd's health findings are right: false alarms on healthy fleets, seeded faults
found with their culprit (issue 14; the figures are in docs/health.md).

    nice -n 10 .venv/bin/python scripts/health_rates.py --healthy 50 --faulty 50

Each fleet is generated from its seed by `dockd_sim.fleetgen` (battery models, day/long/
night shifts, cold weather and summer heat, gauge re-learns, days off, cameras docked in
whichever port is free; a faulty fleet carries 1-3 seeded faults) and played day by day
through the real stack — simulator, pyusb core, NetCo driver, ingest, health capture, the
daemon's charge watch while the cameras stay docked — into a fresh catalog, with the
findings judged after every day. Healthy fleets use seeds 1…N, faulty ones 10001…; the
same command prints the same figures.

A false alarm is a warning or critical on a subject no fault was seeded on, on any day (on a
healthy fleet: any warning or critical). A seeded fault is found when its finding names its
subject (the camera, the port, the store) at the fleet's last judgement: on the port for a
bad port, on the camera for a bad camera — the culprit, not a witness.

Exit status 1 when a healthy fleet raised a warning or critical, or a seeded fault was
missed. Catalogs and stores go under --work (default: a fresh directory in /dev/shm when
there is one) and are removed unless --keep.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import structlog
from dockd_sim.fleetgen import FAULTS, Outcome, generate, play

from dockd.config import HealthConfig

FAULTY_SEEDS_FROM = 10_001


def _one(args: tuple[int, int, Path, float, float]) -> Outcome:
    seed, faults, work, poll_s, watch_min = args
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    fleet = generate(seed, faults=faults)
    root = work / f"{'faulty' if faults else 'healthy'}-{seed}"
    try:
        return play(fleet, root, watch_min=watch_min, health=HealthConfig(charge_poll_s=poll_s))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--healthy", type=int, default=50, help="healthy fleets (seeds 1…N)")
    ap.add_argument("--faulty", type=int, default=50,
                    help=f"faulty fleets (seeds {FAULTY_SEEDS_FROM}…)")
    ap.add_argument("--jobs", type=int, default=1, help="fleets played at once")
    ap.add_argument("--poll-s", type=float, default=300.0,
                    help="health.charge_poll_s of the charge watch (default 300: 60 reads "
                         "five times as often and plays five times as long)")
    ap.add_argument("--watch-min", type=float, default=50.0,
                    help="simulated minutes the cameras stay docked after each day's ingest")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("-v", "--verbose", action="store_true", help="a line per fleet")
    args = ap.parse_args(argv)

    shm = Path("/dev/shm")  # noqa: S108 - tmpfs: a fleet commits thousands of times
    work = args.work or Path(tempfile.mkdtemp(prefix="health-rates-",
                                              dir=shm if shm.is_dir() else None))
    work.mkdir(parents=True, exist_ok=True)
    jobs = ([(s, 0, work, args.poll_s, args.watch_min) for s in range(1, args.healthy + 1)]
            + [(FAULTY_SEEDS_FROM + i, 1 + i % 3, work, args.poll_s, args.watch_min)
               for i in range(args.faulty)])
    started = time.monotonic()
    outcomes: list[Outcome] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for o in pool.map(_one, jobs):
            outcomes.append(o)
            if args.verbose:
                f = o.fleet
                missed = [s.fault for s in f.seeded if not o.found(s)]
                print(f"{'faulty ' if f.faulty else 'healthy'} seed {f.seed:5d} "
                      f"{f.shape['cameras']} cameras {f.days} days {o.seconds:5.1f} s  "
                      f"seeded {[s.fault for s in f.seeded]} missed {missed} "
                      f"alarms {sorted({(a.code, a.subject) for a in o.alarms()})}",
                      file=sys.stderr, flush=True)
    shutil.rmtree(work, ignore_errors=True) if args.work is None else None
    return report(outcomes, time.monotonic() - started, args)


def report(outcomes: list[Outcome], seconds: float, args: argparse.Namespace) -> int:
    healthy = [o for o in outcomes if not o.fleet.faulty]
    faulty = [o for o in outcomes if o.fleet.faulty]
    codes = sorted({f.removesuffix("_ran_out").removesuffix("_short") for f in FAULTS})
    # per finding: healthy fleets with a false alarm of it, seeded faults of it found
    alarm_fleets: Counter[str] = Counter()
    for o in healthy:
        for code in {a.code for a in o.alarms()}:
            alarm_fleets[code] += 1
    faulty_alarm_fleets: Counter[str] = Counter()
    for o in faulty:
        for code in {a.code for a in o.alarms()}:
            faulty_alarm_fleets[code] += 1
    seeded: Counter[str] = Counter()
    found: Counter[str] = Counter()
    for o in faulty:
        for s in o.fleet.seeded:
            seeded[s.fault] += 1
            found[s.fault] += o.found(s)
    shapes = Counter(k for o in outcomes for k in o.fleet.shape["shifts"])
    models = Counter(m for o in outcomes for m in o.fleet.shape["models"])
    print(f"{len(healthy)} healthy and {len(faulty)} faulty fleets "
          f"({sum(o.fleet.shape['cameras'] for o in outcomes)} cameras, "
          f"{sum(o.fleet.days for o in outcomes)} fleet-days; "
          f"charge_poll_s {args.poll_s:g}, {args.watch_min:g} min docked a day) "
          f"in {seconds / 60:.1f} min")
    print("shift kinds (fleets):", dict(sorted(shapes.items())),
          "battery models:", dict(sorted(models.items())),
          "gauge re-learns:", sum(o.fleet.shape["relearns"] for o in outcomes),
          "camera-days off:", sum(o.fleet.shape["days_off"] for o in outcomes))
    print()
    print(f"{'finding':<22} {'false alarms (healthy)':>24} {'(faulty, elsewhere)':>20} "
          f"{'seeded':>7} {'found':>6} {'detection':>10}")
    for code in codes:
        kinds = [f for f in FAULTS if f.removesuffix("_ran_out").removesuffix("_short") == code]
        n, k = sum(seeded[f] for f in kinds), sum(found[f] for f in kinds)
        det = f"{k / n:.0%}" if n else "-"
        print(f"{code:<22} {alarm_fleets[code]:>3}/{len(healthy):<3} "
              f"{(alarm_fleets[code] / len(healthy) if healthy else 0):>14.0%}   "
              f"{faulty_alarm_fleets[code]:>3}/{len(faulty):<3}          "
              f"{n:>7} {k:>6} {det:>10}")
    other = sorted({a.code for o in healthy + faulty for a in o.alarms()} - set(codes))
    for code in other:
        print(f"{code:<22} {alarm_fleets[code]:>3}/{len(healthy):<3} "
              f"{(alarm_fleets[code] / len(healthy) if healthy else 0):>14.0%}   "
              f"{faulty_alarm_fleets[code]:>3}/{len(faulty):<3}")
    total_alarms = sum(1 for o in healthy if o.alarms())
    missed = [(o.fleet.seed, s.fault, s.subject) for o in faulty for s in o.fleet.seeded
              if not o.found(s)]
    errors = [(o.fleet.seed, e) for o in outcomes for e in o.errors]
    print()
    print(f"healthy fleets with any warning or critical: {total_alarms}/{len(healthy)}")
    print(f"seeded faults found with their culprit: {sum(found.values())}/"
          f"{sum(seeded.values())}")
    if missed:
        print("missed:", missed)
    if errors:
        print("docks that failed before a session:", errors[:10])
    return 1 if total_alarms or missed else 0


if __name__ == "__main__":
    sys.exit(main())
