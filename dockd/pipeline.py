"""Single-pass ingest of one recording: read → SHA-256 → age-encrypt → write → fsync → publish.

Each byte is touched once per stage, with bounded memory (two batches in flight):
the reading thread fills a batch with `readinto`, hands it to the hash thread (plaintext
SHA-256), encrypts it with `encrypt_into` into a reused aligned buffer, hands that to the
same hash thread (stored-file SHA-256, queued behind the plaintext) and to a writer thread
that writes whole 4 KiB blocks with O_DIRECT (the tail is carried to the next batch).
hashlib releases the GIL on large buffers; the AEAD does not, so encryption stays in the
reading thread. One hash thread, not one per hash: on two cores two CPU-bound threads (reader
and hasher) beat three, by ~15 % in whole-process runs here (docs/performance.md; see also
/work/shared/notes/performance.md and docs/storage.md).

Resume: every `checkpoint_every` bytes the partial is fsynced and a 0600 sidecar records
(file key, payload nonce, header length, complete chunks). A later attempt, even after a
restart, truncates the partial to that durable length, decrypts the durable chunks with
the sidecar key to rebuild both SHA-256 states (hashlib state cannot be saved), and asks the
camera for the rest. The sidecar is removed as soon as the file is published.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockd.crypto.header import build_header, header_mac, parse_header
from dockd.crypto.keys import X25519Recipient, new_file_key
from dockd.crypto.stream import (
    CHUNK,
    NONCE_SIZE,
    SEALED,
    PayloadOpener,
    PayloadSealer,
    payload_key,
)
from dockd.driver import RecordingStream
from dockd.errors import (
    CryptoError,
    DeviceError,
    DockdError,
    IntegrityError,
    ProtocolError,
    StorageError,
    StoreExists,
)
from dockd.store import (
    FILE_MODE,
    create_partial,
    ensure_dir,
    fsync_dir,
    publish,
    remove_quietly,
    sidecar_path,
    storage_error,
)

DEFAULT_BATCH = 1 << 20
#: O_DIRECT alignment of buffers, lengths and file offsets (the common logical block size)
ALIGN = 4096
DEFAULT_CHECKPOINT = 64 << 20
_SLOTS = 2  # batches in flight per transfer: one being read and sealed, one hashed and written
_SIDECAR_VERSION = 1
_MAX_SIDECAR = 64 << 10

ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class FileStamp:
    """Which inode a file is, and whether it changed since: (device, inode, size, mtime)."""

    dev: int
    ino: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def same_inode(self, st: os.stat_result) -> bool:
        return (st.st_dev, st.st_ino) == (self.dev, self.ino)


@dataclass
class Written:
    """A recording written, fsynced and hash-checked into its partial, not yet published.

    The writer's fd stays open until `publish`, which gives a final name to *the inode that
    was written* (its fd's, compared with what the partial's name points to), never to
    whatever a name happens to point to; `discard` gives up. One of the two must be called.
    """

    partial: Path
    fd: int
    #: the partial as it was right after its last fsync
    stamp: FileStamp
    plaintext_sha256: bytes
    stored_sha256: bytes
    #: plaintext bytes (the recording's size)
    bytes: int
    stored_bytes: int
    seconds: float
    #: plaintext offset this attempt started at (0 unless resumed)
    resumed_from: int = 0

    def publish(self, final: Path) -> FileStamp:
        """Remove the resume state (the file key must never outlive the partial), check the
        partial's name still points at the written, unchanged inode, rename it to `final`
        without replacing anything, fsync the directory. Returns the published file's stamp.
        Raises StoreExists, or StorageError when the partial was replaced or changed."""
        try:
            remove_quietly(sidecar_path(self.partial))
            fsync_dir(self.partial.parent)
            now = FileStamp.of(os.fstat(self.fd))
            named = os.lstat(self.partial)
            if now != self.stamp or not self.stamp.same_inode(named):
                raise StorageError(
                    f"{self.partial}: is no longer the file this transfer wrote (replaced or "
                    "changed since its last fsync); not published")
            publish(self.partial, final)
            if not self.stamp.same_inode(os.lstat(final)):
                raise StorageError(f"{final}: another file took the partial's place while it "
                                   "was published")
        except OSError as exc:
            self.discard()
            raise storage_error(exc, self.partial, "publishing") from exc
        except DockdError:
            self.discard()
            raise
        self._close()
        return self.stamp

    def discard(self) -> None:
        """Give up: close the fd and remove the partial and its resume state (nothing once
        published or kept)."""
        if self.fd >= 0:
            self._close()
            discard_partial(self.partial)

    def keep(self) -> None:
        """Not published now: close the fd, leave the partial and its resume state for a
        later attempt to resume from."""
        self._close()

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


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


def _write_sidecar(partial: Path, state: ResumeState) -> None:
    path = sidecar_path(partial)
    tmp = path.with_name(path.name + ".tmp")
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
    data = json.dumps(doc, sort_keys=True).encode()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     FILE_MODE)
        try:
            os.fchmod(fd, FILE_MODE)
            _write_all(fd, memoryview(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
        fsync_dir(path.parent)
    except OSError as exc:
        remove_quietly(tmp)
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
    remove_quietly(sidecar_path(partial).with_name(sidecar_path(partial).name + ".tmp"))
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


# --- ingest ----------------------------------------------------------------------------


def _write_all(fd: int, view: memoryview) -> None:
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _fill(stream: RecordingStream, view: memoryview) -> tuple[int, DeviceError | None]:
    """readinto until view is full or the stream ends. A device error is returned, not
    raised, with the count that did arrive, so the whole chunks among them can be kept."""
    got = 0
    while got < len(view):
        try:
            n = stream.readinto(view[got:])
        except DeviceError as exc:
            return got, exc
        if n < 0 or n > len(view) - got:
            return got, ProtocolError(f"recording stream returned an impossible count {n}")
        if n == 0:
            break
        got += n
    return got, None


def _aligned_buffer(size: int) -> tuple[bytearray, memoryview]:
    """A bytearray and a view of `size` bytes of it starting on an ALIGN boundary."""
    raw = bytearray(size + ALIGN)
    skip = -ctypes.addressof(ctypes.c_char.from_buffer(raw)) % ALIGN
    return raw, memoryview(raw)[skip : skip + size]


class _Slot:
    def __init__(self, batch: int, headroom: int) -> None:
        self.inbuf = bytearray(batch)
        # headroom in front of the ciphertext holds the previous batch's unaligned tail
        self._raw, self.out = _aligned_buffer(headroom + batch // CHUNK * SEALED + SEALED)
        self.pending: list[Future[None]] = []

    def wait(self) -> None:
        for fut in self.pending:
            fut.result()
        self.pending.clear()


class _Appender:
    """Appends ciphertext to the partial at `pos`, from a writer thread.

    Whole 4 KiB blocks go out with O_DIRECT from aligned buffers: no copy into the page cache,
    which was the costliest and noisiest step of the main thread here (see docs/storage.md).
    The write itself runs on one writer thread (pwrite releases the GIL), so the next batch is
    read and sealed while this one goes to disk; positions are explicit, so order does not
    matter, and the caller keeps a batch's buffer untouched until its write future is done.
    The unaligned tail waits in `carry` and is written in front of the next batch. Where the
    filesystem refuses O_DIRECT (EINVAL), writes fall back to buffered ones.
    """

    def __init__(self, fd: int, pos: int, carry: bytes) -> None:
        self.fd = fd
        #: file offset after everything handed to the writer so far
        self.pos = pos
        self.carry = carry
        self.direct = self._set_direct(True)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="writer")
        #: writes handed over and not yet known to have succeeded
        self._jobs: list[Future[None]] = []

    def _set_direct(self, on: bool) -> bool:
        try:
            flags = fcntl.fcntl(self.fd, fcntl.F_GETFL)
            flags = flags | os.O_DIRECT if on else flags & ~os.O_DIRECT
            fcntl.fcntl(self.fd, fcntl.F_SETFL, flags)
        except OSError:
            return False
        return on

    def _pwrite(self, view: memoryview, pos: int) -> None:
        while view:
            try:
                n = os.pwrite(self.fd, view, pos)
            except OSError as exc:
                if exc.errno == errno.EINVAL and self.direct:
                    self.direct = self._set_direct(False)
                    continue
                raise
            pos += n
            view = view[n:]
            if n % ALIGN and self.direct:  # a short direct write: finish buffered
                self.direct = self._set_direct(False)

    def _submit(self, fn: Callable[..., None], *args: Any) -> Future[None]:
        job = self._pool.submit(fn, *args)
        self._jobs = [j for j in self._jobs if not j.done() or j.exception() is not None]
        self._jobs.append(job)
        return job

    def push(self, buf: memoryview, total: int, *, final: bool) -> Future[None]:
        """Write buf[:total] (carry + new ciphertext); keep the unaligned tail unless final.
        The returned future is done once buf may be reused."""
        aligned = total // ALIGN * ALIGN if self.direct else total
        job = self._submit(self._pwrite, buf[:aligned], self.pos)
        self.pos += aligned
        self.carry = bytes(buf[aligned:total])
        if final:
            self.drain()
        return job

    def _write_tail(self, tail: bytes, pos: int) -> None:
        if self.direct:
            self.direct = self._set_direct(False)
        self._pwrite(memoryview(tail), pos)

    def drain(self) -> None:
        """Write the carried tail now (end of file, or before a checkpoint on error) and
        wait for every write handed over so far."""
        if self.carry:
            self._submit(self._write_tail, self.carry, self.pos)
            self.pos += len(self.carry)
            self.carry = b""
        self.flush()

    def flush(self) -> None:
        """Wait until every write handed over has reached the file; the first write that
        failed (ENOSPC on a last tail included) raises here."""
        jobs, self._jobs = self._jobs, []
        for job in jobs:
            job.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def _plan(
    stream: RecordingStream,
    partial: Path,
    recipients: Sequence[X25519Recipient],
    expected_size: int,
    expected_sha256: bytes | None,
    resume_state: ResumeState | None,
) -> tuple[int, ResumeState, _Appender]:
    """Open the partial for this attempt (new or resumed); return (fd, state, appender)."""
    if resume_state is not None:
        state = resume_state
        if state.plain_hash is None or state.stored_hash is None:
            raise StorageError(f"{partial}: resume state was not prepared by load_resume")
        if stream.offset != state.plaintext_offset:
            raise StorageError(
                f"{partial}: stream starts at {stream.offset}, resume needs "
                f"{state.plaintext_offset}"
            )
        try:
            fd = os.open(partial, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise storage_error(exc, partial, "reopening partial") from exc
        # continue from the last whole block: its written part becomes the carry
        pos = state.stored_length // ALIGN * ALIGN
        try:
            carry = os.pread(fd, state.stored_length - pos, pos)
        except OSError as exc:
            os.close(fd)
            raise storage_error(exc, partial, "reading partial") from exc
        if len(carry) != state.stored_length - pos:
            os.close(fd)
            raise StorageError(f"{partial}: shorter than its resume state")
        return fd, state, _Appender(fd, pos, carry)
    if stream.offset != 0:
        raise StorageError(f"{partial}: a fresh ingest needs a stream from offset 0")
    file_key, nonce = new_file_key(), os.urandom(NONCE_SIZE)
    prefix = build_header(recipients, file_key) + nonce  # before any file exists: may refuse
    ensure_dir(partial.parent)
    fd = create_partial(partial)
    state = ResumeState(
        file_key=file_key,
        payload_nonce=nonce,
        payload_start=len(prefix),
        chunks=0,
        expected_size=expected_size,
        expected_sha256=expected_sha256,
        recipients=tuple(str(r) for r in recipients),
        plain_hash=hashlib.sha256(),
        stored_hash=hashlib.sha256(prefix),
    )
    # the header goes out in front of the first batch, as carry
    return fd, state, _Appender(fd, 0, prefix)


def ingest_stream(
    stream: RecordingStream,
    *,
    expected_size: int,
    expected_sha256: bytes | None,
    recipients: Sequence[X25519Recipient],
    partial_path: Path,
    final_path: Path,
    resume_state: ResumeState | None = None,
    on_progress: ProgressFn | None = None,
    batch_bytes: int = DEFAULT_BATCH,
    checkpoint_every: int = DEFAULT_CHECKPOINT,
    on_checkpoint: Callable[[], None] | None = None,
) -> Written:
    """Stream one recording into `partial_path` as an age file, durable and hash-checked,
    ready to be published at `final_path` (`Written.publish`, after the caller has recorded
    its intent). `expected_sha256` None: the camera keeps no hash; the plaintext SHA-256
    taken while reading is where custody starts.

    Raises IntegrityError (plaintext hash mismatch; partial removed), ProtocolError (the
    stream is longer or shorter than announced), StoreFull (ENOSPC; partial removed),
    StoreExists (final_path taken; partial removed), StorageError, or the stream's own
    DeviceError — after which the partial stays, checkpointed, for a resumed attempt.
    Call `load_resume(partial_path, …)` first and open the stream at its offset: a fresh
    attempt never reuses an existing partial (StoreExists). The stream is not closed here.
    `on_checkpoint` runs after each checkpoint (the caller renews its lease there; raising
    stops the transfer).
    """
    started = time.monotonic()
    if expected_size < 0 or (expected_sha256 is not None and len(expected_sha256) != 32):
        raise StorageError("expected_size must be >= 0 and expected_sha256 32 bytes or None")
    if stream.size != expected_size:
        raise ProtocolError(f"stream announces {stream.size} bytes, listing said {expected_size}")
    if partial_path.parent != final_path.parent:
        raise StorageError(f"{partial_path}: partial must be beside {final_path.name}")
    if final_path.exists() or final_path.is_symlink():
        raise StoreExists(f"{final_path}: already exists; the store never overwrites")
    batch = max(CHUNK, batch_bytes // CHUNK * CHUNK)
    fd, state, appender = _plan(stream, partial_path, recipients, expected_size,
                                expected_sha256, resume_state)
    resumed_from = state.plaintext_offset
    sealer = PayloadSealer(payload_key(state.file_key, state.payload_nonce), state.chunks)
    # both hashes on one thread, in batch order: plaintext of batch k while k is sealed, then
    # its ciphertext
    hasher = ThreadPoolExecutor(1, thread_name_prefix="sha256")
    headroom = max(ALIGN, -(-len(appender.carry) // ALIGN) * ALIGN)
    slots = [_Slot(batch, headroom) for _ in range(_SLOTS)]
    offset = resumed_from
    stored_bytes = state.stored_length
    last_checkpoint = offset
    final = False

    def checkpoint(*, report: bool = True) -> None:
        # record only complete non-final chunks that are in the file (not in the carry):
        # they are what resume trusts. fdatasync: data and size are what resume needs.
        appender.flush()
        durable = max(0, appender.pos - state.payload_start) // SEALED
        chunks = min(sealer.counter - (1 if final else 0), durable)
        if chunks <= state.chunks:
            return
        os.fdatasync(fd)
        state.chunks = chunks
        _write_sidecar(partial_path, state)
        if report and on_checkpoint is not None:
            on_checkpoint()

    try:
        try:
            index = 0
            while True:
                slot = slots[index % _SLOTS]
                index += 1
                slot.wait()
                want = min(batch, expected_size - offset)
                n, error = _fill(stream, memoryview(slot.inbuf)[:want])
                if error is not None:
                    n = n // CHUNK * CHUNK  # keep the whole chunks that did arrive
                elif n < want:
                    error = ProtocolError(
                        f"recording ended at byte {offset + n}, camera announced {expected_size}"
                    )
                    n = n // CHUNK * CHUNK
                # n < want on error, so a batch cut short by an error is never the final one
                final = error is None and offset + n == expected_size
                src = memoryview(slot.inbuf)[:n]
                slot.pending.append(hasher.submit(state.plain_hash.update, src))
                carried = len(appender.carry)
                slot.out[:carried] = appender.carry
                sealed = sealer.seal(src, slot.out[carried:], final=final)
                fresh = slot.out[carried : carried + sealed]
                slot.pending.append(hasher.submit(state.stored_hash.update, fresh))
                slot.pending.append(appender.push(slot.out, carried + sealed, final=final))
                offset += n
                stored_bytes += sealed
                if error is not None:
                    raise error
                if on_progress is not None:
                    on_progress(offset, expected_size)
                if final:
                    break
                if offset - last_checkpoint >= checkpoint_every:
                    checkpoint()
                    last_checkpoint = offset
            extra, error = _fill(stream, memoryview(bytearray(1)))
            if error is not None:
                raise error
            if extra:
                raise ProtocolError(f"camera sent more than the {expected_size} bytes it announced")
            for slot in slots:
                slot.wait()
            appender.flush()
            os.fsync(fd)
            stamp = FileStamp.of(os.fstat(fd))
            written = stamp.size
            if written != stored_bytes:
                # a write lost without an error must never get a final name: a short file
                # there would be adopted as the verified copy after a crash
                raise StorageError(
                    f"{partial_path}: holds {written} of the {stored_bytes} bytes written; "
                    "removed, the recording stays on the camera"
                )
        except DeviceError as exc:
            for slot in slots:
                slot.wait()
            if not isinstance(exc, IntegrityError):
                appender.drain()
                checkpoint(report=False)  # keep what arrived intact for the next attempt
            raise
        finally:
            hasher.shutdown(wait=True)
            appender.close()
    except OSError as exc:
        os.close(fd)
        discard_partial(partial_path)
        raise storage_error(exc, partial_path, "writing") from exc
    except StorageError:
        os.close(fd)
        discard_partial(partial_path)
        raise
    except DeviceError:
        os.close(fd)
        if not sidecar_path(partial_path).exists():
            discard_partial(partial_path)  # nothing resumable was recorded
        raise
    except BaseException:
        os.close(fd)
        raise

    plain_digest = state.plain_hash.digest()
    if expected_sha256 is not None and not hmac.compare_digest(plain_digest, expected_sha256):
        os.close(fd)
        discard_partial(partial_path)
        raise IntegrityError(
            f"SHA-256 mismatch: camera says {expected_sha256.hex()}, received {plain_digest.hex()}"
        )
    return Written(
        partial=partial_path,
        fd=fd,
        stamp=stamp,
        plaintext_sha256=plain_digest,
        stored_sha256=state.stored_hash.digest(),
        bytes=expected_size,
        stored_bytes=stored_bytes,
        seconds=time.monotonic() - started,
        resumed_from=resumed_from,
    )
