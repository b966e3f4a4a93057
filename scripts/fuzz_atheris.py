#!/usr/bin/env python3
"""Coverage-guided fuzzing (atheris/libFuzzer) of every parser of untrusted input — the
longer run behind the bounded hypothesis targets in tests/test_fuzz_*.py.

atheris is not a dependency of dockd; install it beside the venv, not into it:

    .venv/bin/pip install --target /tmp/atheris-lib atheris
    PYTHONPATH=/tmp/atheris-lib .venv/bin/python scripts/fuzz_atheris.py TARGET \
        -max_total_time=600 -rss_limit_mb=512 -timeout=5 [CORPUS_DIR]

TARGET is one of: config, dropin, scenario, age, netco. Any exception other than the
module's typed error is a crash (libFuzzer writes the input to crash-*); -rss_limit_mb and
-timeout turn big allocations and hangs into crashes too. Seeds come from the shipped files.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import atheris  # type: ignore[import-not-found]

with atheris.instrument_imports():
    from dockd_netco import protocol as p
    from dockd_sim.scenario import load_scenario

    from dockd.config import parse_config
    from dockd.crypto.keys import generate_identity, parse_identity
    from dockd.crypto.stream import AgeReader
    from dockd.errors import ConfigError, CryptoError, ProtocolError
    from dockd.matching import parse_rules

ROOT = Path(__file__).resolve().parent.parent
SECRET, RECIPIENT = generate_identity()
IDENTITY = parse_identity(SECRET)
_SCRATCH = Path(tempfile.mkdtemp(prefix="dockd-fuzz-")) / "scenario.toml"
_DECODERS = [p.decode_info, p.decode_battery, p.decode_list_page, p.decode_shift_page,
             p.decode_read_answer, p.decode_data_head, p.decode_identify, p.decode_status,
             p.decode_read_request, p.decode_page_request, p.decode_name, p.decode_clock]


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def config(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        parse_config(_text(data), Path("fuzz.toml"))


def dropin(data: bytes) -> None:
    with contextlib.suppress(ConfigError):
        parse_rules(_text(data), "fuzz.toml")


def scenario(data: bytes) -> None:
    _SCRATCH.write_bytes(data)
    with contextlib.suppress(ConfigError):
        load_scenario(_SCRATCH)


def age(data: bytes) -> None:
    try:
        for _ in AgeReader(io.BytesIO(data), [IDENTITY]):
            pass
    except CryptoError:
        pass


def netco(data: bytes) -> None:
    """First byte picks a decoder; the rest is a frame (or a payload) from the camera."""
    if not data:
        return
    try:
        frame = p.decode_frame(data[1:], expect_response=True)
        _DECODERS[data[0] % len(_DECODERS)](frame.payload)
    except ProtocolError:
        pass
    with contextlib.suppress(ProtocolError):
        _DECODERS[data[0] % len(_DECODERS)](data[1:])


def _seeds(target: str) -> list[bytes]:
    if target == "config":
        return [(ROOT / "config" / "dockd.toml").read_bytes()]
    if target == "dropin":
        return [(ROOT / "drivers" / "netco" / "dockd_netco" / "match.toml").read_bytes()]
    if target == "scenario":
        return [f.read_bytes() for f in sorted((ROOT / "scenarios").rglob("*.toml"))]
    if target == "age":
        return [subprocess.run(["age", "-e", "-r", RECIPIENT], input=b"x" * n,
                               capture_output=True, check=True).stdout for n in (0, 70_000)]
    return []


TARGETS: dict[str, Callable[[bytes], None]] = {
    "config": config, "dropin": dropin, "scenario": scenario, "age": age, "netco": netco}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options] [corpus]")
    target = sys.argv.pop(1)
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:  # seed an empty corpus directory with the shipped files
        directory = Path(corpus[0])
        directory.mkdir(parents=True, exist_ok=True)
        if not any(directory.iterdir()):
            for i, seed in enumerate(_seeds(target)):
                (directory / f"seed-{i}").write_bytes(seed)
    atheris.Setup(sys.argv, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main()
