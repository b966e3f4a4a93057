"""Resuming a transfer: the resume state (sidecar) of a partial, and preparing a partial to
be continued.

An age stream is fully described by (file key, payload nonce, complete non-final chunks
written). Every checkpoint the partial is fsynced and then a 0600 sidecar records that, with
the recording's expected size and hash and the recipients. A later attempt, even after a
restart, checks the sidecar belongs to this recording and these recipients, checks the
header MAC with the saved key, truncates the partial to its durable length and decrypts every
durable chunk to rebuild both SHA-256 states (hashlib state cannot be saved), then asks the
camera for the rest. The sidecar is the one place a file key is on disk: it never outlives
its partial (removed before the partial is published, and with it when discarded).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd.crypto.header import header_mac, parse_header
from dockd.crypto.keys import X25519Recipient
from dockd.crypto.stream import CHUNK, NONCE_SIZE, SEALED, PayloadOpener, payload_key
from dockd.errors import CryptoError
from dockd.store import fsync_dir, remove_quietly, sidecar_path, storage_error, write_atomic

DEFAULT_BATCH = 1 << 20
_SIDECAR_VERSION = 1
_MAX_SIDECAR = 64 << 10


@dataclass
class ResumeState:
    """What a resumed attempt needs. Built by `load_resume`, which also rebuilt the hashes."""

    file_key: bytes = field(repr=False)
    payload_nonce: bytes
    #: bytes before the first chunk: header + payload nonce
    payload_start: int
    #: complete non-final chunks that are durable in the partial
    chunks: int
    expected_size: int
    #: None: the camera keeps no hash (custody starts with the one taken while reading)
    expected_sha256: bytes | None
    recipients: tuple[str, ...]
    plain_hash: Any = field(default=None, repr=False)
    stored_hash: Any = field(default=None, repr=False)

    @property
    def plaintext_offset(self) -> int:
        return self.chunks * CHUNK

    @property
    def stored_length(self) -> int:
        return self.payload_start + self.chunks * SEALED


# --- sidecar ---------------------------------------------------------------------------


def write_sidecar(partial: Path, state: ResumeState) -> None:
    path = sidecar_path(partial)
    doc = {
        "version": _SIDECAR_VERSION,
        "file_key": state.file_key.hex(),
        "payload_nonce": state.payload_nonce.hex(),
        "payload_start": state.payload_start,
        "chunks": state.chunks,
        "expected_size": state.expected_size,
        "expected_sha256": (state.expected_sha256.hex()
                            if state.expected_sha256 is not None else None),
        "recipients": list(state.recipients),
    }
    try:
        write_atomic(path, json.dumps(doc, sort_keys=True).encode())
    except OSError as exc:
        raise storage_error(exc, path, "writing resume state") from exc


def _read_sidecar(partial: Path) -> ResumeState | None:
    path = sidecar_path(partial)
    try:
        if path.is_symlink() or path.stat().st_size > _MAX_SIDECAR:
            return None
        doc = json.loads(path.read_bytes())
        state = ResumeState(
            file_key=bytes.fromhex(doc["file_key"]),
            payload_nonce=bytes.fromhex(doc["payload_nonce"]),
            payload_start=int(doc["payload_start"]),
            chunks=int(doc["chunks"]),
            expected_size=int(doc["expected_size"]),
            expected_sha256=(bytes.fromhex(doc["expected_sha256"])
                             if doc["expected_sha256"] is not None else None),
            recipients=tuple(str(r) for r in doc["recipients"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if doc.get("version") != _SIDECAR_VERSION or len(state.file_key) != 16:
        return None
    if len(state.payload_nonce) != NONCE_SIZE or state.chunks < 0 or state.payload_start < 0:
        return None
    return state


def discard_partial(partial: Path) -> None:
    """Remove a partial and its resume sidecar (and the key with it)."""
    remove_quietly(partial)
    remove_quietly(sidecar_path(partial))
    try:
        fsync_dir(partial.parent)
    except OSError:
        return


def load_resume(
    partial: Path,
    *,
    expected_size: int,
    expected_sha256: bytes | None,
    recipients: Sequence[X25519Recipient],
    batch_bytes: int = DEFAULT_BATCH,
    beat: Callable[[], None] | None = None,
) -> ResumeState | None:
    """Prepare to resume `partial`, or return None after discarding what cannot be resumed.

    Checks the sidecar belongs to this recording and these recipients, checks the header MAC
    with the saved key, truncates the partial to its durable length, and decrypts every
    durable chunk (proving it intact) to rebuild the plaintext and ciphertext SHA-256.
    A partial of gigabytes takes a while: `beat` is called after every batch, so the
    watchdog hears that the worker lives.
    """
    if not partial.exists():
        remove_quietly(sidecar_path(partial))
        return None
    state = _read_sidecar(partial)
    wanted = tuple(str(r) for r in recipients)
    if (
        state is None
        or state.expected_size != expected_size
        or state.expected_sha256 != expected_sha256
        or state.recipients != wanted
        or state.plaintext_offset >= max(expected_size, 1)
    ):
        discard_partial(partial)
        return None
    try:
        _verify_prefix(partial, state, batch_bytes, beat)
    except (CryptoError, OSError):
        discard_partial(partial)
        return None
    return state


def _verify_prefix(partial: Path, state: ResumeState, batch_bytes: int,
                   beat: Callable[[], None] | None) -> None:
    with partial.open("r+b") as f:
        available = os.fstat(f.fileno()).st_size
        if available < state.stored_length:
            # the sidecar is written only after an fsync, so this means outside interference
            raise CryptoError("partial is shorter than its resume state says")
        header = parse_header(f)
        if header.length + NONCE_SIZE != state.payload_start:
            raise CryptoError("partial header length does not match its resume state")
        if not hmac.compare_digest(header_mac(state.file_key, header.mac_input), header.mac):
            raise CryptoError("partial header MAC does not match the saved file key")
        f.seek(0)
        prefix = f.read(state.payload_start)
        if len(prefix) != state.payload_start:
            raise CryptoError("partial header could not be re-read")
        stored = hashlib.sha256(prefix)
        if prefix[-NONCE_SIZE:] != state.payload_nonce:
            raise CryptoError("partial payload nonce does not match its resume state")
        plain = hashlib.sha256()
        opener = PayloadOpener(payload_key(state.file_key, state.payload_nonce))
        per_batch = max(1, batch_bytes // CHUNK)
        inbuf = bytearray(per_batch * SEALED)
        outbuf = bytearray(per_batch * CHUNK)
        left = state.chunks
        while left:
            count = min(per_batch, left)
            view = memoryview(inbuf)[: count * SEALED]
            if f.readinto(view) != len(view):
                raise CryptoError("partial ended early while re-reading")
            n = opener.open(view, memoryview(outbuf), final=False)
            plain.update(memoryview(outbuf)[:n])
            stored.update(view)
            left -= count
            if beat is not None:
                beat()
        f.truncate(state.stored_length)
        f.flush()
        os.fsync(f.fileno())
    state.plain_hash = plain
    state.stored_hash = stored
