#!/usr/bin/env python3
"""Micro-benchmark of the single-pass ingest pipeline against its baselines.

Generates a deterministic input file (default 1 GiB), reads it once so it sits in the page
cache, then times (median of --runs whole runs each; wall time, and CPU seconds of the process
and its children, which a busy shared machine disturbs far less than wall time):

  openssl    `openssl dgst -sha256 FILE`: the floor, SHA-256 alone on one core
  hashlib    Python hashlib.sha256 over the file in 1 MiB readinto blocks
  age        stock `age -r` encrypting the file (no hash, no fsync)
  pyrage     pyrage.encrypt_file (only when `import pyrage` works in this interpreter)
  agewriter  dockd.crypto.AgeWriter encrypting the file (no hash, no fsync): like-for-like
             with the two rows above
  ingest     dockd.pipeline.ingest_stream from the file: SHA-256 of plaintext and ciphertext,
             age encryption, write, fsync, publish; output removed after each run
  ingest-sim the same, fed by the simulated camera's generated content (AES-CTR keystream)

Usage: bench_pipeline.py [--size BYTES] [--runs N] [--dir DIR] [--only NAME,NAME]
Needs `openssl` and `age` on PATH for those two rows.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from dockd_sim.content import GeneratedContent

from dockd.crypto import AgeWriter, parse_recipient
from dockd.pipeline import ingest_stream
from dockd.store import partial_path

pyrage: ModuleType | None
try:  # optional: only to compare against, never a dependency of dockd
    import pyrage  # type: ignore[no-redef, unused-ignore]
except ImportError:
    pyrage = None

MiB = 1 << 20


class FileStream:
    """A RecordingStream over a local file, for measuring the pipeline without a device."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size
        self.offset = 0

    def readinto(self, buffer: memoryview) -> int:
        n = os.readv(self._fd, [buffer[: self.size - self.offset]])
        self.offset += n
        return n

    def close(self) -> None:
        os.close(self._fd)


def make_input(path: Path, size: int) -> None:
    content = GeneratedContent(size, seed=1)
    buf = bytearray(8 * MiB)
    with path.open("wb") as f:
        offset = 0
        while offset < size:
            n = content.read_into(offset, memoryview(buf))
            f.write(memoryview(buf)[:n])
            offset += n


def warm(path: Path) -> None:
    buf = bytearray(8 * MiB)
    with path.open("rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def _cpu() -> float:
    """CPU seconds (user + system) of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object], runs: int) -> list[tuple[float, float]]:
    """(wall seconds, CPU seconds) per run. CPU time is far less sensitive to a busy machine."""
    out = []
    for _ in range(runs):
        c0, t0 = _cpu(), time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0, _cpu() - c0))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=1 << 30)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="where input/output go (a disk)")
    ap.add_argument("--only", default="", help="comma-separated rows to run")
    ap.add_argument("--batch", type=int, default=MiB, help="ingest batch bytes")
    args = ap.parse_args()
    only = {x for x in args.only.split(",") if x}
    base = Path(tempfile.mkdtemp(prefix="dockd-bench-", dir=args.dir or Path.home()))
    src = base / "input.bin"
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        make_input(src, args.size)
        warm(src)

        def want(name: str) -> bool:
            return not only or name in only

        if want("openssl") and shutil.which("openssl"):
            results["openssl"] = timed(
                lambda: subprocess.run(["openssl", "dgst", "-sha256", str(src)], check=True,
                                       capture_output=True), args.runs)
        if want("hashlib"):
            def hash_file() -> None:
                h, buf = hashlib.sha256(), bytearray(MiB)
                with src.open("rb", buffering=0) as f:
                    while n := f.readinto(buf):
                        h.update(memoryview(buf)[:n])
            results["hashlib"] = timed(hash_file, args.runs)
        ident_text = recipient_text = ""
        if shutil.which("age-keygen"):
            keys = subprocess.run(["age-keygen"], check=True, capture_output=True, text=True)
            ident_text = next(ln for ln in keys.stdout.splitlines() if ln.startswith("AGE-"))
            recipient_text = subprocess.run(["age-keygen", "-y"], input=ident_text,
                                            check=True, capture_output=True,
                                            text=True).stdout.strip()
        if want("age") and recipient_text:
            out = base / "age.out"
            results["age"] = timed(
                lambda: subprocess.run(["age", "-r", recipient_text, "-o", str(out), str(src)],
                                       check=True), args.runs)
            out.unlink()
        if want("pyrage") and recipient_text:
            if pyrage is None:
                print("pyrage not importable here; skipping its row", file=sys.stderr)
            else:
                out = base / "pyrage.out"
                rage = pyrage
                rcpt = rage.x25519.Recipient.from_str(recipient_text)
                results["pyrage"] = timed(
                    lambda: rage.encrypt_file(str(src), str(out), [rcpt]), args.runs)
                out.unlink()
        if want("agewriter") and recipient_text:
            out = base / "agewriter.out"
            rcpt_obj = parse_recipient(recipient_text)

            def agewriter() -> None:
                buf = bytearray(MiB)
                with src.open("rb", buffering=0) as f, out.open("wb") as sink:
                    writer = AgeWriter.create(sink, [rcpt_obj])
                    while n := f.readinto(buf):
                        writer.write(memoryview(buf)[:n])
                    writer.finish()
            results["agewriter"] = timed(agewriter, args.runs)
            out.unlink()
        if want("ingest") or want("ingest-sim"):
            recipient = parse_recipient(recipient_text)
            digest = GeneratedContent(args.size, seed=1).sha256()

            def ingest(sim: bool) -> None:
                final = base / "out" / "rec.age"
                stream = (_SimStream(GeneratedContent(args.size, seed=1)) if sim
                          else FileStream(src))
                try:
                    ingest_stream(stream, expected_size=args.size, expected_sha256=digest,
                                  recipients=[recipient], partial_path=partial_path(final),
                                  final_path=final, batch_bytes=args.batch)
                finally:
                    stream.close()
                final.unlink()

            if want("ingest"):
                results["ingest"] = timed(lambda: ingest(False), args.runs)
            if want("ingest-sim"):
                results["ingest-sim"] = timed(lambda: ingest(True), args.runs)
    finally:
        shutil.rmtree(base, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"input {args.size / MiB:.0f} MiB, page-cached, median of {args.runs} runs, "
          f"{os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"{'row':<12}{'wall s':>8}{'MB/s':>8}{'CPU s':>8}{'best MB/s':>11}   wall runs (s)")
    for name, runs in results.items():
        walls = [w for w, _ in runs]
        med, cpu = statistics.median(walls), statistics.median(c for _, c in runs)
        print(f"{name:<12}{med:>8.3f}{args.size / med / 1e6:>8.0f}{cpu:>8.2f}"
              f"{args.size / min(walls) / 1e6:>11.0f}   " + " ".join(f"{t:.2f}" for t in walls))
    return 0


class _SimStream:
    def __init__(self, content: object) -> None:
        self.content = content
        self.size: int = content.size  # type: ignore[attr-defined]
        self.offset = 0

    def readinto(self, buffer: memoryview) -> int:
        n: int = self.content.read_into(self.offset, buffer)  # type: ignore[attr-defined]
        self.offset += n
        return n

    def close(self) -> None:
        pass


if __name__ == "__main__":
    sys.exit(main())
