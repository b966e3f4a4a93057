"""SIGTERM sent 200 times at random moments of a busy run, never hanging: every stop within 5 s.

The real `dockd run --once` is started 200 times: four independent worlds (env, store, catalog,
simulated flash) side by side, 50 lives each. The dock is busy: three cameras, 2-5 MiB per
recording behind 2 MB/s links, so transfers are always in flight. The flash persists between
lives, so each life resumes what the last one checkpointed; once a life ends with every camera
empty, the next docks a new generation of recordings (new names and bytes: a `--sim-reset` of
the same scenario would only bring back recordings the catalog holds, which are proved and
deleted again, not transferred).

Each life gets one SIGTERM, or a storm of 2-5 SIGTERMs 20 µs-5 ms apart, at a seeded random
moment 0-1.5 s after the daemon started — measured from the moment its SIGTERM handler is
installed (seen in /proc), the first thing `run_daemon` does — so during start-up (before
`dockd_started`), mid-transfer, or while it ends on its own. One life in ten is signalled
0-0.6 s after the spawn instead, while the interpreter still imports dockd (on this machine
the handler is in place ~0.5 s after the spawn when idle, ~1.8 s (median) under this test's
load). Each world's catalog is created before its first life, as on an installed dock: a
SIGTERM during the very first start waits for the catalog's creation (Alembic in a child
process), which took 3.4-4.1 s under this test's load — start-up is not interruptible.

Asserted for every life:

- it exits within 5 s of its first SIGTERM (first signal → exit, seen through a pidfd);
- with exit code 0. One other outcome is legitimate: death by SIGTERM (-15) when the signal
  came before `run_daemon` installed its handler (the disposition in /proc when it was sent)
  and the process had written nothing — it was still importing modules and had opened
  nothing; systemd counts SIGTERM as a clean exit. A signal after the handlers were set to
  SIG_IGN at the very end also ends 0;
- no traceback on stdout or stderr (both go to the life's log);
- exit 0 after a signal means it started and stopped: `dockd_started`, then a `stopping` line
  with signal "SIGTERM", then `dockd_stopped` — the `stopping` line may be missing only when
  the run had already finished all its work (its `dockd_stopped` counts a session per camera,
  none incomplete).

After the 200 lives and one calm run per world (no signal): nothing lost (`assert_nothing_lost`
with `age` decrypting, for the generation on the cameras and the same check for every earlier
generation), every camera empty, and no temporary file left in the store (a partial is kept
only to resume a recording still on a camera; none is).

Why this fails on the old code, whose SIGTERM handler logged `stopping` itself: CPython runs a
handler on the main thread between two bytecodes, and structlog's PrintLogger holds the
stream's non-reentrant lock around `print`. A handler that logs while the main thread is in
there waits forever for that lock. The main thread logs rarely (`dockd_started`, at the stop),
and a storm adds a moment: the first handler logs `stopping`, and a second SIGTERM arriving
while that line is printed runs the handler again, nested, inside the lock. Against a copy of
dockd whose handler logs (PYTHONPATH pointing at it), two runs of this test failed with 1 and
2 hung lives, each main thread stuck in PrintLogger.msg called by the handler called from
PrintLogger.msg (faulthandler's stacks, from PYTHONFAULTHANDLER + SIGABRT, are in the life's
log). Each deadlock needs a signal inside the microseconds that lock is held, so a run catches
the old handler with high probability (both runs here did), not certainty; it also logs
`stopping` before `dockd_started` when the signal comes during start-up, which fails the
order check for the lives signalled then.

This test is about 200 real start-ups; each costs about 1 CPU-second (interpreter, imports,
catalog, simulator), so on 2 cores it needs well over 100 s whatever the parallelism.
DOCKD_STORM_SEED replays another storm; DOCKD_STORM_LIVES changes the number of lives. Every
life's record is written to lives.jsonl in the test's directory.
"""

from __future__ import annotations

import json
import math
import os
import random
import select
import signal
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_ingest import (
    Env,
    age_decrypt_sha256,
    assert_nothing_lost,
    leftovers,
    make_env,
    recording,
    recordings_by_key,
    run_daemon,
    scenario_toml,
    source_sha256,
    start_daemon,
    still_on_camera,
    tolerant_events,
)

SEED = int(os.environ.get("DOCKD_STORM_SEED", "20261129"))
LIVES = int(os.environ.get("DOCKD_STORM_LIVES", "200"))
WORLDS = 4
CAMERAS = 3
LINK_MB_S = 2
STOP_LIMIT_S = 5.0
#: a life still running this long after its first SIGTERM is hung: stacks dumped, killed
HANG_S = 10.0
MIB = 1 << 20


# --- the plan: drawn before any life starts, so a seed replays the same storm ---------------


@dataclass(frozen=True)
class Plan:
    #: the moment counts from the spawn (interpreter start-up), not from run_daemon's start
    from_spawn: bool
    delay_s: float
    #: pauses between the further SIGTERMs of a storm (empty: one signal)
    gaps_s: tuple[float, ...]

    def describe(self) -> str:
        origin = "the spawn" if self.from_spawn else "the handler was installed"
        text = f"SIGTERM {self.delay_s:.3f} s after {origin}"
        if self.gaps_s:
            gaps = ", ".join(f"{g * 1e3:.2f}" for g in self.gaps_s)
            text += f", a storm of {len(self.gaps_s) + 1} ({gaps} ms apart)"
        return text


def plan_life(rng: random.Random) -> Plan:
    from_spawn = rng.random() < 0.1
    delay = rng.uniform(0.0, 0.6 if from_spawn else 1.5)
    gaps: tuple[float, ...] = ()
    if rng.random() < 0.5:
        gaps = tuple(math.exp(rng.uniform(math.log(20e-6), math.log(5e-3)))
                     for _ in range(rng.randint(1, 4)))
    return Plan(from_spawn, round(delay, 4), gaps)


# --- one life -------------------------------------------------------------------------------


@dataclass
class Life:
    world: int
    index: int
    plan: Plan
    log_path: Path
    #: SIGTERM's disposition in the daemon when the first signal went out
    disposition: str = ""
    #: where the first signal met the daemon: interpreter (importing, no handler yet),
    #: start-up (before dockd_started), running, ending (dockd_stopped logged, or SIG_IGN),
    #: or ended-first (it finished its work before its moment came: no signal)
    phase: str = "ended-first"
    signals: int = 0
    rc: int | None = None
    #: spawn → SIGTERM handler installed (lives timed from the handler)
    handler_s: float | None = None
    #: first SIGTERM → exit
    stop_s: float | None = None
    hung: bool = False
    problems: list[str] = field(default_factory=list)


def sigterm_disposition(pid: int) -> str:
    """"caught", "ignored" or "default", from /proc (a zombie still answers)."""
    bit = 1 << (signal.SIGTERM - 1)
    masks = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("SigIgn", "SigCgt"):
                masks[key] = int(value.strip(), 16)
    if masks.get("SigCgt", 0) & bit:
        return "caught"
    return "ignored" if masks.get("SigIgn", 0) & bit else "default"


def exited(pidfd: int, timeout_s: float) -> bool:
    """True once the process has ended (not reaped: its pid stays ours to signal)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout_s * 1000))))


def pause(seconds: float) -> None:
    """Sleep; spin for sub-2 ms pauses, which sleep overshoots."""
    if seconds >= 2e-3:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def phase_of(disposition: str, log: bytes) -> str:
    if disposition == "default":
        return "interpreter"
    if disposition == "ignored" or b'"dockd_stopped"' in log:
        return "ending"
    return "running" if b'"dockd_started"' in log else "start-up"


class World:
    """One env (store, catalog, scenario, simulated flash), lived in by one thread."""

    def __init__(self, root: Path, number: int, lives: int) -> None:
        root.mkdir()
        self.root = root
        self.number = number
        self.rng = random.Random(f"{SEED}/{number}")
        self.plans = [plan_life(self.rng) for _ in range(lives)]
        # the shipped device timeout: make_env's 0.5 s fails reads on a CPU this loaded
        self.env: Env = make_env(root, ingest={"transfer_timeout_s": 5.0})
        # the catalog exists, as on an installed dock: the first start of a world would
        # otherwise create it (Alembic, in a child), and a SIGTERM then waits for that
        with self.env.catalog():
            pass
        #: each generation's (serial, name) → SHA-256; the last is the one on the cameras
        self.generations: list[dict[tuple[str, str], str]] = []
        self.reset = True
        self.lives: list[Life] = []
        self.problems: list[str] = []
        self.new_generation()

    def new_generation(self) -> None:
        g, k = len(self.generations), self.number
        cameras = [{"serial": f"NC-STORM{k}-{c}", "slot": c + 1, "link_mb_s": LINK_MB_S,
                    "recording": [recording(f"G{g:02d}_{c}_{j}.MP4",
                                            self.rng.randint(2 * MIB, 5 * MIB),
                                            seed=self.rng.randrange(1 << 30), minute=g * 3 + j)
                                  for j in range(3)]}
                   for c in range(CAMERAS)]
        self.env.scenario.write_text(scenario_toml(cameras, dock=f"dock-storm-{k}"))
        self.generations.append(source_sha256(self.env))
        self.reset = True

    def run(self) -> None:
        for n, plan in enumerate(self.plans):
            life = Life(self.number, n, plan, self.root / f"life{n:03d}.log")
            self.live(life)
            judge(life)
            self.lives.append(life)
            if not any(still_on_camera(self.env).values()):
                self.new_generation()  # all ingested: new recordings keep work in flight
        # the calm run, no signal: the same flash behind unthrottled links (only the
        # timeline changes, so the simulator keeps each camera's state)
        self.env.scenario.write_text(self.env.scenario.read_text().replace(
            f"link_mb_s = {LINK_MB_S}\n", "link_mb_s = 0\n"))
        calm = run_daemon(self.env, timeout_s=120)
        if calm.returncode != 0 or "Traceback" in calm.stderr:
            self.problems.append(f"world {self.number}: the calm run exited {calm.returncode}"
                                 f": {calm.stderr[-1500:]}")

    def live(self, life: Life) -> None:
        plan = life.plan
        proc = start_daemon(self.env, life.log_path, reset=self.reset)
        spawned = time.monotonic()
        self.reset = False
        pidfd = os.pidfd_open(proc.pid)
        try:
            origin = spawned
            if not plan.from_spawn:  # from run_daemon's start: its SIGTERM handler is in place
                while sigterm_disposition(proc.pid) == "default" and not exited(pidfd, 0.002):
                    assert time.monotonic() - spawned < 60, "no SIGTERM handler after 60 s"
                origin = time.monotonic()
                life.handler_s = origin - spawned
            if exited(pidfd, origin + plan.delay_s - time.monotonic()):
                life.rc = proc.wait()  # it finished its work before its moment came
                return
            life.disposition = sigterm_disposition(proc.pid)
            life.phase = phase_of(life.disposition, life.log_path.read_bytes())
            first = time.monotonic()
            os.kill(proc.pid, signal.SIGTERM)  # not reaped yet: the pid cannot be reused
            life.signals = 1
            for gap in plan.gaps_s:
                pause(gap)
                os.kill(proc.pid, signal.SIGTERM)
                life.signals += 1
            life.hung = not exited(pidfd, HANG_S - (time.monotonic() - first))
            life.stop_s = time.monotonic() - first
            if life.hung:
                os.kill(proc.pid, signal.SIGABRT)  # faulthandler writes every thread's stack
                if not exited(pidfd, 5):
                    os.kill(proc.pid, signal.SIGKILL)
            life.rc = proc.wait()
        finally:
            os.close(pidfd)
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def judge(life: Life) -> None:
    """A life's exit and log against what a stop must look like (into `life.problems`)."""
    text = life.log_path.read_text(errors="replace")
    events = tolerant_events(life.log_path)
    names = [e.get("event") for e in events]
    where = f"world {life.world} life {life.index} ({life.plan.describe()}; {life.log_path})"
    tail = " | ".join(text.splitlines()[-40 if life.hung else -6:])
    problems = life.problems
    if life.hung:
        problems.append(f"{where}: still running {HANG_S} s after SIGTERM (a deadlocked "
                        f"handler?); its stacks and last lines: {tail}")
        return
    if "Traceback" in text:
        problems.append(f"{where}: a traceback: {tail}")
    if life.signals == 0:
        if life.rc != 0:
            problems.append(f"{where}: ended on its own with exit {life.rc}: {tail}")
        return
    if life.rc == -signal.SIGTERM:
        # legitimate only before run_daemon installed its handler: nothing opened or said
        if life.disposition != "default" or text.strip():
            problems.append(f"{where}: killed by SIGTERM although the disposition was "
                            f"{life.disposition!r} when it was sent: {tail}")
        return
    if life.rc != 0:
        problems.append(f"{where}: exit {life.rc} after SIGTERM (a stop asked for is a "
                        f"clean stop: 0): {tail}")
        return
    if "dockd_started" not in names and "dockd_stopped" in names:
        # stopped during start-up (the catalog was opening): said so, in order, and nothing
        # else was started
        stop = events[names.index("dockd_stopped")]
        if (stop.get("during") != "start-up" or "stopping" not in names
                or names.index("stopping") > names.index("dockd_stopped")):
            problems.append(f"{where}: a start-up stop that did not say so: {tail}")
        return
    if "dockd_started" not in names or "dockd_stopped" not in names:
        problems.append(f"{where}: exit 0 without dockd_started and dockd_stopped: {tail}")
        return
    started, stopped = names.index("dockd_started"), names.index("dockd_stopped")
    stopping = [i for i, n in enumerate(names) if n == "stopping"]
    if stopping:
        signals = {events[i].get("signal") for i in stopping}
        if signals != {"SIGTERM"} or not started < stopping[0] < stopped:
            problems.append(f"{where}: stopping lines out of order or naming {signals}: "
                            f"{tail}")
    elif not finished(events[stopped]):
        problems.append(f"{where}: no 'stopping' line, yet the run had not finished its "
                        f"work: {tail}")


def finished(stopped: dict[str, Any]) -> bool:
    """Is this `dockd_stopped` of a run whose every camera's session had ended complete?"""
    return (stopped.get("sessions") == CAMERAS and stopped.get("incomplete") == 0
            and stopped.get("broken") == 0)


def assert_earlier_generations_kept(world: World) -> None:
    """assert_nothing_lost for earlier generations, which the scenario no longer lists: each
    was off its camera when its generation ended, so each must be catalogued verified, its
    file present, and decrypt (age) to the source bytes."""
    rows = recordings_by_key(world.env)
    for key, sha in ((k, v) for gen in world.generations[:-1] for k, v in gen.items()):
        row = rows.get(key)
        assert row is not None, f"world {world.number}: {key} left its camera uncatalogued"
        assert row.status in ("verified", "deleted_from_camera"), (key, row.status)
        assert row.camera_sha256 == sha, key
        path = Path(row.store_path or "")
        assert row.store_path and path.is_file(), f"{key}: {path} is missing"
        assert age_decrypt_sha256(world.env, path) == sha, f"{key}: wrong bytes"


# --- the test -------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_storm_never_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    # a hung life's SIGABRT then writes every thread's stack into its log
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    # 200 start-ups on 2 cores: let them share compiled bytecode, as an installed venv does
    # (PYTHONDONTWRITEBYTECODE=1 here would have each one compile dockd anew)
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path / "pycache"))
    t0 = time.monotonic()
    (tmp_path / "warm-up").mkdir()
    warm = make_env(tmp_path / "warm-up", scenario_text=scenario_toml(
        [{"serial": "NC-WARM", "slot": 1, "recording": [recording("W.MP4", 1 << 16, seed=1)]}]))
    assert run_daemon(warm, reset=True).returncode == 0  # fills the bytecode cache

    worlds = [World(tmp_path / f"world{k}", k, LIVES // WORLDS + (k < LIVES % WORLDS))
              for k in range(WORLDS)]
    with ThreadPoolExecutor(WORLDS) as pool:
        for done in [pool.submit(w.run) for w in worlds]:
            done.result()
    load = os.getloadavg()

    lives = [life for w in worlds for life in w.lives]
    with (tmp_path / "lives.jsonl").open("w") as out:
        for life in lives:
            record = asdict(life) | {"log_path": str(life.log_path)}
            out.write(json.dumps(record) + "\n")
    stops = sorted(life.stop_s for life in lives if life.stop_s is not None)
    count = Counter(life.phase for life in lives)
    count["storms"] = sum(life.signals > 1 for life in lives)
    count["generations"] = sum(len(w.generations) for w in worlds)
    distribution = (f"stop_s max={stops[-1]:.2f} median={statistics.median(stops):.2f} "
                    f"p90={stops[int(len(stops) * 0.9)]:.2f} min={stops[0]:.2f}"
                    if stops else "no stop measured")
    summary = (f"sigterm storm seed={SEED}: lives={len(lives)} "
               f"signals={sum(life.signals for life in lives)} "
               + " ".join(f"{k}={v}" for k, v in count.items())
               + f" {distribution} load1={load[0]:.1f} on {os.cpu_count()} CPUs "
               f"wall={time.monotonic() - t0:.0f}s")
    with capsys.disabled():
        print("\n" + summary)

    hung = [life for life in lives if life.hung]
    problems = [p for life in hung for p in life.problems]  # the worst first
    problems += [p for life in lives if not life.hung for p in life.problems]
    problems += [p for w in worlds for p in w.problems]
    assert not problems, (f"{len(problems)} problems, {len(hung)} lives hung ({summary}):\n"
                          + "\n".join(problems[:10]))
    assert len(lives) == LIVES and count["ended-first"] <= LIVES // 5, summary  # busy enough
    slow = [life for life in lives if life.stop_s is not None and life.stop_s > STOP_LIMIT_S]
    overloaded = load[0] > 2 * (os.cpu_count() or 1)
    assert not slow, (
        f"{len(slow)} stops took longer than {STOP_LIMIT_S} s "
        f"({'; '.join(f'{life.stop_s:.2f} s: {life.plan.describe()}' for life in slow[:5])}); "
        f"{distribution}; load average {load} on {os.cpu_count()} CPUs"
        + (": the machine is overloaded, which slows every stop, not only the daemon's"
           if overloaded else ""))

    for w in worlds:
        assert_nothing_lost(w.env, decrypt=True)  # the generation on the cameras now
        assert_earlier_generations_kept(w)
        on_camera = still_on_camera(w.env)
        assert not any(on_camera.values()), on_camera  # the calm run ingested everything
        assert leftovers(w.env) == []  # no partial: nothing is left to resume
