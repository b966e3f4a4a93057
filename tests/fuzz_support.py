"""Shared pieces of the fuzz tests (tests/test_fuzz_*.py): a byte mutator, a token
dictionary for TOML, the example budget, and a guard on time and memory per input.

CI runs a bounded number of examples per target (a few seconds each). A longer campaign:
`DOCKD_FUZZ_EXAMPLES=20000 .venv/bin/pytest tests/test_fuzz_*.py` (docs/testing.md).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: examples per fuzz target; raise it for a longer run
EXAMPLES = int(os.environ.get("DOCKD_FUZZ_EXAMPLES", "250"))
#: one input may not take longer than this to be accepted or refused ...
MAX_SECONDS = 2.0
#: ... nor allocate more than this at its peak (a parser that trusts a length would)
MAX_PEAK_BYTES = 32 << 20

FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 250,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])

#: pieces of TOML worth splicing into a valid file: structure, types, extremes
TOML_TOKENS = [
    b"[", b"]", b"[[", b"]]", b"=", b'"', b"'", b"'''", b'"""', b"\n", b"#", b",", b"{", b"}",
    b".", b"\\", b"\\u0000", b"\\U0010FFFF", b"true", b"false", b"-1", b"0", b"1e400", b"nan",
    b"inf", b"-inf", b"9223372036854775807", b"-9223372036854775808", b"99999999999999999999",
    b"0x", b"0xFFFFFFFF", b"1979-05-27T07:32:00Z", b"1979-05-27", b"07:32:00", b"\x00",
    b"\xff\xfe", b"\xc3\x28", b"\xe2\x80\xae", b"..", b"/", b"../../etc/passwd",
    b"AGE-SECRET-KEY-1", b"age1", b"[]", b"[[]]", b"{}", b"[1, [2]]", b'["a", 1]',
]


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], tokens: list[bytes] = TOML_TOKENS) -> bytes:
    """A seed input changed by a few random edits: flips, cuts, repeats, spliced tokens."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.integers(0, 5))
        at = draw(st.integers(0, len(data)))
        if op == 0 and data:
            data[min(at, len(data) - 1)] ^= 1 << draw(st.integers(0, 7))
        elif op == 1:
            data[at:at] = draw(st.sampled_from(tokens))
        elif op == 2:
            del data[at : at + draw(st.integers(1, 64))]
        elif op == 3:
            piece = data[at : at + draw(st.integers(1, 64))]
            data[at:at] = piece * draw(st.integers(1, 4))
        elif op == 4:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            # swap two lines: keys move between tables
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


@contextmanager
def bounded(what: str) -> Iterator[None]:
    """Fail if the body takes too long or allocates too much (Python heap, tracemalloc)."""
    tracemalloc.start()
    start = time.monotonic()
    try:
        yield
    finally:
        seconds = time.monotonic() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert seconds < MAX_SECONDS, f"{what}: took {seconds:.1f} s"
    assert peak < MAX_PEAK_BYTES, f"{what}: peak allocation {peak >> 20} MiB"


def only_raises(fn: Callable[[], object], allowed: type[BaseException] | tuple[
        type[BaseException], ...], what: str) -> BaseException | None:
    """Run fn within bounds; it may succeed or raise `allowed`, nothing else."""
    with bounded(what):
        try:
            fn()
        except allowed as exc:
            return exc
    return None
