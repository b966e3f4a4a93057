"""Transfer health per (camera, dock port), and who is to blame when transfers fail.

`transfer_cells` counts each finished attempt once per (camera, port) pairing. Failures the
host caused (the store full, a storage error, dockd stopping) are counted apart
(`host_failed`) and never against a camera or a port.

`attribute` judges the whole fleet's history at once and explains failures away. A camera
is a candidate culprit when its failures follow it: bad on at least two ports, and on more
ports than it works on; a port likewise across cameras. The fewest candidates that explain
every bad pairing the candidates explain are the culprits (the least contradicted set on a
tie); a pairing a culprit explains counts against nobody else. What no culprit explains
stays "can't tell yet", with the docking that would tell.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dockd.catalog.rows import TransferRecord

#: error kinds of failures the host caused, not the camera or the port: a full store, a
#: store that could not be written, dockd stopping mid-transfer
HOST_ERROR_KINDS = frozenset({"store_full", "storage", "interrupted"})
#: a pairing needs this many failures (beyond the rate) before it counts as bad
MIN_PAIR_FAILURES = 2
#: a culprit needs bad pairings with at least this many partners (ports or cameras)
MIN_BAD_PARTNERS = 2
#: transient failures a healthy camera on a healthy port has now and then (a corrupt read,
#: a stall a retry fixes), as a share of attempts; a pairing is bad only when its failures
#: are unlikely (< SIGNIFICANCE) at this rate
BACKGROUND_FAIL_RATE = 0.05
SIGNIFICANCE = 0.01
#: a partner counts as one it works with after this many attempts below the failure rate
MIN_WORKING_ATTEMPTS = 2


def port_name(dock: str | None, slot: int | None) -> str:
    return f"{dock or '?'}/{slot if slot is not None else '?'}"


@dataclass
class CellStats:
    attempts: int = 0
    #: failures of the camera or the port (host-side failures are not among them)
    failed: int = 0
    #: failures the host caused (HOST_ERROR_KINDS): counted, blamed on nobody
    host_failed: int = 0
    #: attempts beyond the first for a recording within one dock session
    retries: int = 0
    ok_bytes: int = 0
    ok_seconds: float = 0.0
    error_kinds: set[str] = field(default_factory=set)
    #: when its first failure started, and its last clean transfer (time order of evidence)
    first_failed_at: datetime | None = None
    last_ok_at: datetime | None = None

    @property
    def judged(self) -> int:
        """Attempts that say something about the camera or the port."""
        return self.attempts - self.host_failed

    @property
    def fail_rate(self) -> float:
        return self.failed / self.judged if self.judged else 0.0

    @property
    def mb_s(self) -> float | None:
        return self.ok_bytes / self.ok_seconds / 1e6 if self.ok_seconds > 0 else None

    def add(self, other: CellStats) -> None:
        self.attempts += other.attempts
        self.failed += other.failed
        self.host_failed += other.host_failed
        self.retries += other.retries
        self.ok_bytes += other.ok_bytes
        self.ok_seconds += other.ok_seconds
        self.error_kinds |= other.error_kinds
        self.first_failed_at = min((t for t in (self.first_failed_at, other.first_failed_at)
                                    if t is not None), default=None)
        self.last_ok_at = max((t for t in (self.last_ok_at, other.last_ok_at)
                               if t is not None), default=None)


def transfer_cells(records: Sequence[TransferRecord]) -> dict[tuple[str, str], CellStats]:
    """(camera serial, port name) → statistics."""
    cells: dict[tuple[str, str], CellStats] = {}
    seen: set[tuple[int | None, int]] = set()
    for r in records:
        cell = cells.setdefault((r.camera_serial, port_name(r.dock, r.slot)), CellStats())
        cell.attempts += 1
        ident = (r.session_id, r.recording_id)
        # the attempt after one the host broke (full store, storage, stopping) is the host's
        # retry, not a sign of a bad camera or port: only the pairing's own attempts lead to
        # a counted retry
        host = not r.ok and r.error_kind in HOST_ERROR_KINDS
        if ident in seen and not host:
            cell.retries += 1
        if not host:
            seen.add(ident)
        if r.ok:
            cell.ok_bytes += r.bytes
            cell.ok_seconds += (r.finished_at - r.started_at).total_seconds()
            if cell.last_ok_at is None or r.started_at > cell.last_ok_at:
                cell.last_ok_at = r.started_at
        elif r.error_kind in HOST_ERROR_KINDS:
            cell.host_failed += 1
        else:
            cell.failed += 1
            if cell.first_failed_at is None or r.started_at < cell.first_failed_at:
                cell.first_failed_at = r.started_at
            if r.error_kind:
                cell.error_kinds.add(r.error_kind)
    return cells


def by_camera(cells: dict[tuple[str, str], CellStats]) -> dict[str, CellStats]:
    out: dict[str, CellStats] = {}
    for (cam, _), c in cells.items():
        out.setdefault(cam, CellStats()).add(c)
    return out


def by_port(cells: dict[tuple[str, str], CellStats]) -> dict[str, CellStats]:
    out: dict[str, CellStats] = {}
    for (_, port), c in cells.items():
        out.setdefault(port, CellStats()).add(c)
    return out


# --- attribution ------------------------------------------------------------------------------


Pair = tuple[str, str]  # (camera, port)


@dataclass(frozen=True)
class Culprit:
    kind: str  # camera | port
    name: str
    #: partners (ports of a camera, cameras of a port) with a bad pairing it explains
    bad_with: tuple[str, ...]
    #: partners it worked with (failure share below the rate) when it was judged
    fine_with: tuple[str, ...]
    #: the pairings it explains (their failures count against it, never against the partner)
    pairs: tuple[Pair, ...]


@dataclass(frozen=True)
class Undecided:
    """A bad pairing no culprit explains: the camera or the port, can't tell yet."""

    camera: str
    port: str
    #: ports where this camera works / cameras this port works for (the evidence so far)
    camera_fine_on: tuple[str, ...]
    port_fine_with: tuple[str, ...]

    @property
    def suspect(self) -> str | None:
        """camera | port when one side already works elsewhere, else None."""
        if self.camera_fine_on and not self.port_fine_with:
            return "port"
        if self.port_fine_with and not self.camera_fine_on:
            return "camera"
        return None

    def next_docking(self) -> str:
        """The docking that would tell which one is at fault."""
        if self.suspect == "port":
            return f"dock another camera in port {self.port}"
        if self.suspect == "camera":
            return f"dock {self.camera} on another port"
        return f"dock {self.camera} on another port and another camera in port {self.port}"


@dataclass(frozen=True)
class Attribution:
    culprits: list[Culprit]
    undecided: list[Undecided]

    def explained_by(self, pair: Pair) -> list[Culprit]:
        return [c for c in self.culprits if pair in c.pairs]


def is_bad(c: CellStats, rate: float) -> bool:
    """≥ MIN_PAIR_FAILURES failures at a share ≥ `rate`, and more than chance gives: the
    transient failures any healthy pairing has now and then (BACKGROUND_FAIL_RATE of
    attempts, a retry fixes them) make a pairing's failures this many or more with a
    probability below SIGNIFICANCE. Two glitches in seven attempts are chance (p ≈ 0.04);
    two of two, or four of five, are not."""
    return (c.failed >= MIN_PAIR_FAILURES and c.fail_rate >= rate
            and chance_of(c.failed, c.judged) < SIGNIFICANCE)


def works(c: CellStats, rate: float) -> bool:
    """The pairing transfers cleanly: a failure share below `rate` over at least
    MIN_WORKING_ATTEMPTS attempts (one clean transfer through a port that fails half the
    time is luck, not evidence that it works)."""
    return c.judged >= MIN_WORKING_ATTEMPTS and c.fail_rate < rate


def chance_of(failed: int, attempts: int, p: float | None = None) -> float:
    """P(at least `failed` of `attempts` fail) when each fails with probability p."""
    p = BACKGROUND_FAIL_RATE if p is None else p
    return max(0.0, 1.0 - sum(math.comb(attempts, i) * p**i * (1 - p) ** (attempts - i)
                              for i in range(min(failed, attempts + 1))))


def attribute(cells: dict[Pair, CellStats], rate: float) -> Attribution:
    """Explain the fleet's failed transfers by the culprits that explain the most of them.

    A camera is a candidate culprit when its failures follow it, a port when they stay on it
    (`_judge`: pooled over its partners, more than chance, spread over two or more of them,
    and more partners it fails with than it works with). Of the sets of candidates in which
    each one still is a culprit on the failures the others do not explain, the one
    explaining the most failures is chosen, then the smallest, then the one the evidence
    contradicts least (fewest partners its culprits work with), then ports. So two bad
    cameras that share a port are the culprits, not the port: with them blamed the port has
    nothing left to explain, while the port alone leaves their failures elsewhere
    unexplained. A pairing a culprit explains counts against nobody else."""
    by_subject: dict[tuple[str, str], dict[Pair, CellStats]] = {}
    for pair, cell in cells.items():
        if cell.judged:
            by_subject.setdefault(("camera", pair[0]), {})[pair] = cell
            by_subject.setdefault(("port", pair[1]), {})[pair] = cell
    cleared = exonerated(cells, rate)
    candidates = [c for (kind, name), mine in sorted(by_subject.items())
                  if (c := _judge(kind, name, mine, set(), rate, cleared)) is not None]
    culprits = _best_set(candidates, by_subject, cells, rate, cleared)
    explained = {p for c in culprits for p in c.pairs}
    undecided = []
    for pair, cell in sorted(cells.items()):
        if pair in explained or not is_bad(cell, rate):
            continue
        cam, port = pair
        undecided.append(Undecided(
            cam, port,
            camera_fine_on=tuple(sorted(p for (k, p), c in cells.items()
                                        if k == cam and p != port and works(c, rate))),
            port_fine_with=tuple(sorted(k for (k, p), c in cells.items()
                                        if p == port and k != cam and works(c, rate)))))
    return Attribution(culprits, undecided)


#: beyond this many candidates the exhaustive search gives way to a greedy one
EXACT_SEARCH_MAX = 10


def exonerated(cells: dict[Pair, CellStats], rate: float) -> dict[str, set[Pair]]:
    """Bad pairings whose trouble cannot be one side's: "camera" — the camera works cleanly
    on at least MIN_BAD_PARTNERS other ports since that trouble began (so it is the port's
    failure, evidence against the port on its own); "port" — likewise the port works for
    other cameras since (evidence against the camera)."""
    out: dict[str, set[Pair]] = {"camera": set(), "port": set()}
    for (cam, port), cell in cells.items():
        if not is_bad(cell, rate) or cell.first_failed_at is None:
            continue
        since = cell.first_failed_at
        ports = [p for (k, p), c in cells.items() if k == cam and p != port
                 and works(c, rate) and c.last_ok_at is not None and c.last_ok_at >= since]
        cams = [k for (k, p), c in cells.items() if p == port and k != cam
                and works(c, rate) and c.last_ok_at is not None and c.last_ok_at >= since]
        if len(ports) >= MIN_BAD_PARTNERS:
            out["camera"].add((cam, port))
        if len(cams) >= MIN_BAD_PARTNERS:
            out["port"].add((cam, port))
    return out


def _best_set(candidates: list[Culprit],
              by_subject: dict[tuple[str, str], dict[Pair, CellStats]],
              cells: dict[Pair, CellStats], rate: float,
              cleared: dict[str, set[Pair]]) -> list[Culprit]:
    if not candidates:
        return []

    def judged(chosen: list[Culprit]) -> list[Culprit] | None:
        """Each chosen one judged on the pairings the others do not explain; None when one
        of them is no culprit there."""
        out = []
        for c in chosen:
            others = {p for o in chosen if o is not c for p in o.pairs}
            again = _judge(c.kind, c.name, by_subject[c.kind, c.name], others, rate, cleared)
            if again is None:
                return None
            out.append(again)
        return out

    def rank(chosen: list[Culprit]) -> tuple[int, int, int, int, list[str]]:
        failures = sum(cells[p].failed for p in {p for c in chosen for p in c.pairs})
        return (-failures, len(chosen), sum(len(c.fine_with) for c in chosen),
                -sum(c.kind == "port" for c in chosen), sorted(f"{c.kind}:{c.name}"
                                                               for c in chosen))

    best: tuple[tuple[int, int, int, int, list[str]], list[Culprit]] | None = None
    if len(candidates) <= EXACT_SEARCH_MAX:
        for size in range(1, len(candidates) + 1):
            for combo in itertools.combinations(candidates, size):
                chosen = judged(list(combo))
                if chosen is not None and (best is None or rank(chosen) < best[0]):
                    best = (rank(chosen), chosen)
        return best[1] if best is not None else []
    # greedy: the culprit explaining the most failures still unexplained, again and again
    picked: list[Culprit] = []
    explained: set[Pair] = set()
    while True:
        found = [c for (kind, name), mine in sorted(by_subject.items())
                 if not any(p.kind == kind and p.name == name for p in picked)
                 and (c := _judge(kind, name, mine, explained, rate, cleared)) is not None]
        if not found:
            return picked
        top = min(found, key=lambda c: rank([c]))
        picked.append(top)
        explained |= set(top.pairs)


def _judge(kind: str, name: str, mine: dict[Pair, CellStats], explained: set[Pair],
           rate: float, cleared: dict[str, set[Pair]] | None = None) -> Culprit | None:
    """`name` (a camera or a port) as a culprit, on its pairings `mine` less `explained`.

    Its failures, pooled over its partners (ports of a camera, cameras of a port), must be at
    a share ≥ `rate` and more than chance (`chance_of` < SIGNIFICANCE) even with any one
    partner left out, with at least MIN_BAD_PARTNERS partners it fails with (≥ 1 failure
    at a share ≥ `rate`), more than the partners it works with (a share below `rate`)."""
    left = {p: c for p, c in mine.items() if p not in explained}

    def partner(p: Pair) -> str:
        return p[1] if kind == "camera" else p[0]

    failed = sum(c.failed for c in left.values())
    judged = sum(c.judged for c in left.values())
    bad = sorted(partner(p) for p, c in left.items() if c.failed and c.fail_rate >= rate)
    fine = sorted(partner(p) for p, c in left.items() if works(c, rate))
    if (len(bad) < MIN_BAD_PARTNERS or len(bad) <= len(fine) or not judged
            or failed / judged < rate):
        return None
    # the case against it must hold without any one partner: one bad camera (and a glitch of
    # another) does not make a bad port, nor one bad port (and a glitch elsewhere) a bad
    # camera. Unless that partner is cleared: it works elsewhere since that trouble began
    # (`exonerated`), so its failures here are this one's.
    partner_kind = "camera" if kind == "port" else "port"
    clear = (cleared or {}).get(partner_kind, set())
    if max((chance_of(failed - c.failed, judged - c.judged)
            for p, c in left.items() if p not in clear),
           default=chance_of(failed, judged)) >= SIGNIFICANCE:
        return None
    pairs = tuple(sorted(p for p, c in left.items() if c.failed))
    return Culprit(kind, name, tuple(bad), tuple(fine), pairs)
