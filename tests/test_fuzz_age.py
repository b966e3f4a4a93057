"""Fuzzing the stored-file readers: the age header parser and the streaming age reader.
Seeds are files made by the real `age` binary; whatever a mutation does, reading gives the
exact plaintext or a CryptoError (AgeFormatError, AuthenticationFailed, TruncatedFile,
NoIdentityMatched) — never another exception, a hang or a big allocation."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from fuzz_support import FUZZ, mutated, only_raises
from hypothesis import given
from hypothesis import strategies as st

from dockd.crypto.header import parse_header
from dockd.crypto.keys import generate_identity, parse_identity
from dockd.crypto.stream import AgeReader
from dockd.errors import CryptoError

AGE = Path("/usr/bin/age")
SECRET, RECIPIENT = generate_identity()
_, OTHER = generate_identity()
PLAINTEXTS = [b"", b"evidence " * 11, bytes(range(256)) * 300]  # 0, 1 and 2 chunks
AGE_TOKENS = [b"age-encryption.org/v1\n", b"-> X25519 ", b"-> scrypt AAAA 18\n", b"--- ",
              b"\n", b" ", b"=", b"A" * 64 + b"\n", b"A" * 65, b"-> ", b"\x00", b"\xff" * 16,
              b"-----BEGIN AGE ENCRYPTED FILE-----\n"]


def _age(plaintext: bytes, *recipients: str) -> bytes:
    args = [str(AGE), "-e"]
    for r in recipients:
        args += ["-r", r]
    return subprocess.run(args, input=plaintext, capture_output=True, check=True).stdout


SEEDS = ([_age(p, RECIPIENT) for p in PLAINTEXTS] + [_age(PLAINTEXTS[1], OTHER, RECIPIENT)]
         if AGE.exists() else [])
pytestmark = pytest.mark.skipif(not AGE.exists(), reason="the age binary is not installed")


def _read(data: bytes) -> bytes:
    identity = parse_identity(SECRET)
    reader = AgeReader(io.BytesIO(data), [identity], batch_chunks=2)
    return b"".join(bytes(piece) for piece in reader)


@FUZZ
@given(mutated(SEEDS, AGE_TOKENS))
def test_mutated_age_files(data: bytes) -> None:
    out: list[bytes] = []
    exc = only_raises(lambda: out.append(_read(data)), CryptoError, "AgeReader")
    if exc is None:
        # accepted: it must be one of the plaintexts, never something half-decrypted
        assert out[0] in PLAINTEXTS


@FUZZ
@given(mutated(SEEDS, AGE_TOKENS))
def test_mutated_headers(data: bytes) -> None:
    only_raises(lambda: parse_header(io.BytesIO(data)), CryptoError, "parse_header")


@FUZZ
@given(st.binary(max_size=512).map(lambda b: b"age-encryption.org/v1\n" + b))
def test_random_after_the_version_line(data: bytes) -> None:
    only_raises(lambda: _read(data), CryptoError, "AgeReader")


def test_the_seeds_decrypt() -> None:
    assert [_read(seed) for seed in SEEDS] == [*PLAINTEXTS, PLAINTEXTS[1]]
