#!/usr/bin/env python3
"""Time dockctl and dockd on a fleet-year catalog (scripts/fleet_catalog.py), cold process
each time: wall seconds (median of --runs), peak RSS (wait4), and the machine's load1 when
each command ran. A benchmark, not a test: it prints a Markdown table.

    .venv/bin/python scripts/fleet_catalog.py --url sqlite:////tmp/fleet/catalog.sqlite
    .venv/bin/python scripts/bench_fleet.py --url sqlite:////tmp/fleet/catalog.sqlite

`--only status,health` picks rows; `--timeout` stops a command that would take all day (its
row then says so). The catalog is read in the page cache: every command runs once untimed
first unless --no-warm. `dockd start-up` is `dockd run --simulate` (a scenario whose camera
docks an hour later) until its READY=1 on a NOTIFY_SOCKET this script binds, then SIGTERM;
its RSS is read from /proc at READY and again 30 s later (a health judgement has run by then).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def timed(argv: list[str], timeout: float) -> tuple[float, int, int, int]:
    """(seconds, peak RSS KiB, exit code, stdout lines) of one process; exit -9 on timeout."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.01)
        seconds = time.monotonic() - start
        out.seek(0)
        lines = sum(1 for _ in out)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return seconds, usage.ru_maxrss, proc.returncode, lines


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def wait_ready(sock: socket.socket, proc: subprocess.Popen[bytes] | subprocess.Popen[str],
               start: float, timeout: float) -> float:
    """Seconds from `start` to the daemon's READY=1 on `sock` (-1: it exited or timed out
    first). `sock` needs a short timeout of its own."""
    while time.monotonic() - start < timeout and proc.poll() is None:
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            continue
        if "READY=1" in msg.split("\n"):
            return time.monotonic() - start
    return -1.0


def startup(config: Path, work: Path, timeout: float, settle_s: float
            ) -> tuple[float, int, int, int]:
    """(seconds to READY=1, RSS KiB at READY, RSS KiB settle_s later, peak RSS KiB)."""
    scen = work / "late.toml"
    scen.write_text('[dock]\nname = "fleet-bench"\nslots = 8\n\n[[camera]]\n'
                    'serial = "NC-LATE"\nslot = 1\ndock_at_s = 3600\n')
    sock_path = work / "notify.sock"
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    sock.settimeout(0.05)
    env = {**os.environ, "NOTIFY_SOCKET": str(sock_path)}
    start = time.monotonic()
    proc = subprocess.Popen([str(BIN / "dockd"), "run", "--config", str(config),
                             "--simulate", str(scen), "--sim-state", str(work / "sim"),
                             "--sim-reset"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        ready = wait_ready(sock, proc, start, timeout)
        at_ready = rss_kib(proc.pid) if proc.poll() is None else 0
        settled = time.monotonic() + settle_s
        while time.monotonic() < settled:  # keep reading: a full socket fails its notify()
            with contextlib.suppress(TimeoutError):
                sock.recv(4096)
        later = rss_kib(proc.pid) if proc.poll() is None else 0
    finally:
        proc.send_signal(signal.SIGTERM)
        _, _, usage = os.wait4(proc.pid, 0)
        sock.close()
    return ready, at_ready, later, usage.ru_maxrss


def dock20(config: Path, work: Path, serial: str, run: int) -> tuple[float, float, int]:
    """`dockd run --once` of one camera with 20 new 64 KiB recordings: (per-recording
    session time that is not transfer, ms; whole process s; peak RSS KiB). The session
    time is from the camera_docked to the dock_session log line; each transfer line's own
    seconds are taken off (what is left is listing, custody events, catalog rows, proof,
    delete, and the dock capture)."""
    import json  # noqa: PLC0415

    scen = work / f"dock20-{run}.toml"
    tag = f"{int(time.time()) % 100000:05d}"  # new names each time: a known name is no work
    recs = "".join(f'[[camera.recording]]\nname = "B{tag}{run:03d}_{i:04d}.MP4"\nsize = 65536\n'
                   f'seed = {run * 100 + i}\nstarted = "2026-11-2{run % 10}T08:{i:02d}:00Z"\n'
                   for i in range(20))
    scen.write_text(f'[dock]\nname = "fleet-bench"\nslots = 8\n\n[[camera]]\n'
                    f'serial = "{serial}"\nslot = 3\n{recs}')
    log = work / f"dock20-{run}.log"
    with log.open("wb") as out:
        start = time.monotonic()
        proc = subprocess.Popen([str(BIN / "dockd"), "run", "--config", str(config),
                                 "--simulate", str(scen), "--sim-state", str(work / "sim20"),
                                 "--sim-reset", "--once"], stdout=out,
                                stderr=subprocess.DEVNULL)
        _, _, usage = os.wait4(proc.pid, 0)
        whole = time.monotonic() - start
    events = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]

    def at(e: dict[str, object]) -> float:
        from datetime import datetime  # noqa: PLC0415

        return datetime.fromisoformat(str(e["timestamp"]).replace("Z", "+00:00")).timestamp()

    docked = next(at(e) for e in events if e.get("event") == "camera_docked")
    done = next(at(e) for e in events if e.get("event") == "dock_session")
    moving = sum(float(str(e["seconds"])) for e in events if e.get("event") == "transfer")
    return (done - docked - moving) / 20 * 1000, whole, usage.ru_maxrss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--camera", default="NC-300017", help="the camera of the per-camera rows")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-warm", action="store_true")
    ap.add_argument("--settle", type=float, default=30.0)
    ap.add_argument("--store", default="",
                    help="the config's storage root (default: a fresh one in the work dir; "
                         "the fleet catalog's files are absent either way)")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from dockd.crypto.keys import generate_identity  # noqa: PLC0415

    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    config = work / "dockd.toml"
    config.write_text(f'[storage]\npath = "{args.store or work / "store"}"\nmin_free_mib = 0\n'
                      f'[catalog]\nurl = "{args.url}"\n'
                      f'[encryption]\nrecipients = ["{generate_identity()[1]}"]\n'
                      '[log]\nformat = "json"\n')
    cfg = ["--config", str(config)]
    ctl = str(BIN / "dockctl")
    rows = {
        "--help": [ctl, "--help"],  # the cold start alone: no catalog opened
        "status": [ctl, "status", *cfg],
        "recordings --camera": [ctl, "recordings", *cfg, "--camera", args.camera],
        "recordings --camera --json": [ctl, "recordings", *cfg, "--camera", args.camera,
                                       "--json"],
        "health": [ctl, "health", *cfg],
        "cameras": [ctl, "cameras", *cfg],
        "ports": [ctl, "ports", *cfg],
        "report": [ctl, "report", *cfg, "--out", str(work / "report.html")],
        "audit --camera": [ctl, "audit", *cfg, "--camera", args.camera],
        "verify": [ctl, "verify", *cfg, "--no-progress"],
    }
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"catalog {args.url}; {os.cpu_count()} CPUs; median of {args.runs}; "
          f"work dir {work}\n")
    print("| command | median s | runs (s) | peak RSS MiB | exit | stdout lines | load1 |")
    print("|---|---:|---|---:|---:|---:|---|")
    for name, argv in rows.items():
        if only and name not in only:
            continue
        if not args.no_warm and name != "verify":
            timed(argv, args.timeout)
        loads, results = [], []
        for _ in range(args.runs if name != "verify" else 1):
            loads.append(load1())
            results.append(timed(argv, args.timeout))
        secs = [r[0] for r in results]
        med = statistics.median(secs)
        code = results[-1][2]
        note = " (timed out)" if code == -9 else ""
        print(f"| `dockctl {name}` | {med:.2f}{note} | {', '.join(f'{s:.2f}' for s in secs)} "
              f"| {max(r[1] for r in results) / 1024:.0f} | {code} | {results[-1][3]} "
              f"| {', '.join(f'{x:.2f}' for x in loads)} |", flush=True)
    if not only or "dock20" in only:
        for run in range(args.runs):
            l1 = load1()
            per_rec, whole, peak = dock20(config, work, args.camera, run)
            print(f"| `dockd run --once`, 20 new recordings of one camera: catalog work per "
                  f"recording | {per_rec:.1f} ms | whole process {whole:.2f} s | "
                  f"{peak / 1024:.0f} | | | {l1:.2f} |", flush=True)
    if not only or "startup" in only:
        for _ in range(args.runs):
            l1 = load1()
            ready, at_ready, later, peak = startup(config, work, args.timeout, args.settle)
            print(f"| `dockd run` start-up to READY=1 | {ready:.2f} | | "
                  f"at READY {at_ready / 1024:.0f}, +{args.settle:.0f} s {later / 1024:.0f}, "
                  f"peak {peak / 1024:.0f} | | | {l1:.2f} |", flush=True)


if __name__ == "__main__":
    main()
