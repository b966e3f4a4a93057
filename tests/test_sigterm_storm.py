"""SIGTERM sent 200 times at random moments of a busy run, never hanging: every stop within 5 s.

The real `dockd run --once` is started 200 times (four independent worlds, 50 lives each, run
side by side) on a busy dock: three cameras, each with a few MiB per recording behind a 2 MB/s
link, so transfers are always in flight. The simulator's flash persists between lives, so each
life resumes what the last one checkpointed; when a life ends with every camera empty, the next
life docks a new generation of recordings (new names and bytes: a mere `--sim-reset` would
give recordings the catalog already holds, which are proved and deleted, not transferred).

Each life gets one SIGTERM, or a storm of 2-5 SIGTERMs 20 µs-5 ms apart, at a seeded random
moment 0-1.5 s after the daemon started (its SIGTERM handler is installed: the first thing
`run_daemon` does), i.e. during start-up (before `dockd_started`), mid-transfer, or while it
stops on its own. One life in ten is signalled 0-0.6 s after the process was spawned instead,
while the interpreter still imports dockd. Asserted for every life:

- it exits within 5 s of the first SIGTERM (measured from that signal to the exit, with a
  pidfd, so the test's own threads do not blur it);
- with exit code 0. The one other legitimate outcome: death by SIGTERM (-15) when the signal
  came before `run_daemon` installed its handler (checked in /proc at the moment of sending)
  and the process had written nothing: it was still importing, had opened nothing, and systemd
  counts SIGTERM as a clean exit. (A signal after the handlers were set to SIG_IGN at the very
  end ends 0, like any other.)
- no traceback on stdout or stderr (both go to the life's log);
- when it ran far enough to start: `dockd_started`, then a `stopping` line with signal
  "SIGTERM", then `dockd_stopped` — unless the run had already finished all its work (its
  `dockd_stopped` line counts every camera's session, none incomplete) when the signal came.

After the 200 lives and one calm run per world: nothing lost (`assert_nothing_lost` with
`age` decrypting, for the generation on the cameras and for every earlier one), and no
temporary file in the store but resumable partials of recordings still on a camera.

Why it fails on the old code, whose SIGTERM handler logged `stopping` itself (and set a
`threading.Event`): CPython runs a handler on the main thread between two bytecodes. When the
signal arrives while that thread is inside structlog's PrintLogger.msg — it holds the
stream's non-reentrant lock around `print` — the handler's own log call waits forever for
that lock. A storm makes this likely rather than rare: the second SIGTERM of a pair 20 µs-5 ms
apart lands, in a fair share of pairs, while the first handler is printing its `stopping` line
(handlers nest in CPython). The hung life does not exit within 5 s; the test dumps its stack
(PYTHONFAULTHANDLER + SIGABRT), SIGKILLs it, and fails naming the life.

DOCKD_STORM_SEED replays another storm; DOCKD_STORM_LIVES changes the number of lives.
"""

from __future__ import annotations

import math
import os
import random
import select
import signal
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from helpers_ingest import (
    Env,
    assert_nothing_lost,
    make_env,
    recording,
    run_daemon,
    scenario_toml,
    source_sha256,
    start_daemon,
    still_on_camera,
    tolerant_events,
)
from torture_lib import check_nothing_lost, unexplained_leftovers

SEED = int(os.environ.get("DOCKD_STORM_SEED", "20261129"))
LIVES = int(os.environ.get("DOCKD_STORM_LIVES", "200"))
WORLDS = 4
CAMERAS = 3
LINK_MB_S = 2
STOP_LIMIT_S = 5.0
#: a life still running this long after its first SIGTERM is hung: stack dumped, killed
HANG_S = 10.0
MIB = 1 << 20


# --- the plan: drawn before the life starts, so a seed replays the same storm ----------------


@dataclass(frozen=True)
class Plan:
    #: measure the moment from the spawn (interpreter start-up), not from run_daemon's start
    from_spawn: bool
    delay_s: float
    #: pauses between the further SIGTERMs of a storm (empty: one signal)
    gaps_s: tuple[float, ...]

    def describe(self) -> str:
        origin = "spawn" if self.from_spawn else "handler installed"
        storm = f", storm of {len(self.gaps_s) + 1} ({', '.join(f'{g * 1e3:.2f}' for g in self.gaps_s)} ms apart)" if self.gaps_s else ""
        return f"SIGTERM {self.delay_s:.3f} s after {origin}{storm}"


def plan_life(rng: random.Random) -> Plan:
    from_spawn = rng.random() < 0.1
    delay = rng.uniform(0.0, 0.6 if from_spawn else 1.5)
    gaps: tuple[float, ...] = ()
    if rng.random() < 0.35:
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
    signals: int = 0
    rc: int | None = None
    #: first SIGTERM → exit (None: it ended before its signal was due)
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
    """True once the process has ended (without reaping it: its pid stays ours to signal)."""
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(max(0, int(timeout_s * 1000))))


def pause(seconds: float) -> None:
    """Sleep, or spin for sub-millisecond pauses (sleep overshoots them)."""
    if seconds >= 2e-3:
        time.sleep(seconds)
        return
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


class World:
    """One env: its own store, catalog, scenario and simulated flash, lived in by one thread."""

    def __init__(self, root: Path, number: int, lives: int) -> None:
        root.mkdir()
        self.root = root
        self.number = number
        self.rng = random.Random(f"{SEED}/{number}")
        self.plans = [plan_life(self.rng) for _ in range(lives)]
        # transfer_timeout_s as shipped: a 0.5 s device timeout would fail reads on a loaded CPU
        self.env: Env = make_env(root, ingest={"transfer_timeout_s": 5.0})
        self.generation = 0
        self.sources: dict[tuple[str, str], str] = {}
        self.reset = True
        self.lives: list[Life] = []
        self.final_rc: int | None = None
        self.final_problems: list[str] = []
        self.new_generation()

    def new_generation(self) -> None:
        g, k = self.generation, self.number
        cameras = [{"serial": f"NC-STORM{k}-{c}", "slot": c + 1, "link_mb_s": LINK_MB_S,
                    "recording": [recording(f"G{g:02d}_{c}_{j}.MP4",
                                            self.rng.randint(2 * MIB, 5 * MIB),
                                            seed=self.rng.randrange(1 << 30), minute=g * 3 + j)
                                  for j in range(3)]}
                   for c in range(CAMERAS)]
        self.env.scenario.write_text(scenario_toml(cameras, dock=f"dock-storm-{k}"))
        self.sources |= source_sha256(self.env)
        self.generation += 1
        self.reset = True

    def run(self) -> World:
        for n, plan in enumerate(self.plans):
            life = Life(self.number, n, plan, self.root / f"life{n:03d}.log")
            self.live(life)
            judge(life)
            self.lives.append(life)
            if not any(still_on_camera(self.env).values()):
                self.new_generation()  # all ingested: dock new recordings, so work is in flight
        final = run_daemon(self.env, timeout_s=120)  # the calm run: no signal
        self.final_rc = final.returncode
        if final.returncode != 0 or "Traceback" in final.stderr:
            self.final_problems.append(f"world {self.number}: the calm run exited "
                                       f"{final.returncode}: {final.stderr[-1500:]}")
        return self

    def live(self, life: Life) -> None:
        plan = life.plan
        proc = start_daemon(self.env, life.log_path, reset=self.reset)
        spawned = time.monotonic()
        self.reset = False
        pidfd = os.pidfd_open(proc.pid)
        try:
            origin = spawned
            if not plan.from_spawn:  # run_daemon's start: its SIGTERM handler is in place
                while sigterm_disposition(proc.pid) == "default":
                    if exited(pidfd, 0.002):
                        break
                    assert time.monotonic() - spawned < 60, "no SIGTERM handler after 60 s"
                origin = time.monotonic()
            if exited(pidfd, origin + plan.delay_s - time.monotonic()):
                life.rc = proc.wait()  # it ended (all work done) before the signal was due
                return
            life.disposition = sigterm_disposition(proc.pid)
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
    """What a life did, against what a stop must look like; problems go to `life.problems`."""
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
    if life.signals == 0:  # ended on its own before its moment came
        if life.rc != 0:
            problems.append(f"{where}: ended on its own with exit {life.rc}: {tail}")
        return
    if life.rc == -signal.SIGTERM:
        # legitimate only before run_daemon installed its handler: nothing opened, nothing said
        if life.disposition != "default" or text.strip():
            problems.append(f"{where}: killed by SIGTERM although its disposition was "
                            f"{life.disposition!r} when sent: {tail}")
        return
    if life.rc != 0:
        problems.append(f"{where}: exit {life.rc} after SIGTERM (a stop asked for is a clean "
                        f"stop: 0): {tail}")
        return
    if "dockd_started" not in names or "dockd_stopped" not in names:
        problems.append(f"{where}: exit 0 without dockd_started and dockd_stopped: {tail}")
        return
    started, stopped = names.index("dockd_started"), names.index("dockd_stopped")
    stopping = [i for i, n in enumerate(names) if n == "stopping"]
    if stopping:
        bad = [events[i].get("signal") for i in stopping if events[i].get("signal") != "SIGTERM"]
        if bad or not started < stopping[0] < stopped:
            problems.append(f"{where}: stopping lines out of order or naming {bad}: {tail}")
    elif not _finished(events[stopped]):
        problems.append(f"{where}: no 'stopping' line, and the run had not finished its "
                        f"work ({events[stopped]}): {tail}")


def _finished(stopped: dict[str, Any]) -> bool:
    """`dockd_stopped` of a run whose every camera's session had ended complete."""
    return (stopped.get("sessions") == CAMERAS and stopped.get("incomplete") == 0
            and stopped.get("broken") == 0)


# --- the test -------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_storm_never_hangs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    # a hung life's SIGABRT then prints every thread's stack into its log
    monkeypatch.setenv("PYTHONFAULTHANDLER", "1")
    t0 = time.monotonic()
    per_world = [LIVES // WORLDS + (k < LIVES % WORLDS) for k in range(WORLDS)]
    worlds = [World(tmp_path / f"world{k}", k, n) for k, n in enumerate(per_world)]
    with ThreadPoolExecutor(WORLDS) as pool:
        for world in pool.map(World.run, worlds):
            assert world is not None
    load = os.getloadavg()

    lives = [life for w in worlds for life in w.lives]
    stops = sorted(life.stop_s for life in lives if life.stop_s is not None)
    signalled = [life for life in lives if life.signals]
    count = {
        "before handler": sum(life.rc == -signal.SIGTERM for life in lives),
        "before dockd_started": sum(
            life.signals > 0 and life.rc == 0
            and '"stopping"' in (text := life.log_path.read_text())
            and text.index('"stopping"') < text.index('"dockd_started"')
            if '"dockd_started"' in text else False for life in lives),
        "storms": sum(len(life.plan.gaps_s) > 0 and life.signals > 1 for life in lives),
        "ended first": sum(life.signals == 0 for life in lives),
        "generations": sum(w.generation for w in worlds),
    }
    distribution = (f"stop s: max={stops[-1]:.2f} median={statistics.median(stops):.2f} "
                    f"p90={stops[int(len(stops) * 0.9)]:.2f} min={stops[0]:.2f}"
                    if stops else "no stop measured")
    summary = (f"sigterm storm seed={SEED}: lives={len(lives)} signals="
               f"{sum(life.signals for life in lives)} "
               + " ".join(f"{k.replace(' ', '_')}={v}" for k, v in count.items())
               + f" {distribution} load={load[0]:.1f}/{os.cpu_count()} cpus "
               f"wall={time.monotonic() - t0:.0f}s")
    with capsys.disabled():
        print("\n" + summary)

    problems = [p for life in lives for p in life.problems]
    problems += [p for w in worlds for p in w.final_problems]
    assert not problems, f"{len(problems)} problems ({summary}):\n" + "\n".join(problems[:20])
    assert len(lives) == LIVES and len(signalled) >= LIVES * 0.8, summary
    slow = [life for life in lives if life.stop_s is not None and life.stop_s > STOP_LIMIT_S]
    overloaded = load[0] > 2 * (os.cpu_count() or 1)
    assert not slow, (
        f"{len(slow)} stops took longer than {STOP_LIMIT_S} s "
        f"({', '.join(f'{life.stop_s:.2f} s: {life.plan.describe()}' for life in slow[:5])}); "
        f"{distribution}; load average {load} on {os.cpu_count()} CPUs"
        + (" — the machine is overloaded, so this may be the machine, not the daemon"
           if overloaded else ""))

    for w in worlds:
        assert_nothing_lost(w.env, decrypt=True)  # the generation on the cameras now
        assert check_nothing_lost(w.env, w.sources, decrypt=True) == []  # and every earlier
        on_camera = still_on_camera(w.env)
        assert not any(on_camera.values()), on_camera  # the calm run ingested everything
        assert unexplained_leftovers(w.env, on_camera) == []
