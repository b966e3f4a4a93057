"""Single-pass ingest of one recording: read → SHA-256 → age-encrypt → write → fsync →
`Written`, which the custodian publishes once its intent is committed.

Each byte is touched once per stage, with bounded memory (two batches in flight): the
reading thread fills a batch with `readinto`, hands it to the hash thread (plaintext
SHA-256), encrypts it with `encrypt_into` into a reused aligned buffer, hands that to the
same hash thread (stored-file SHA-256, queued behind the plaintext) and to the writer thread
(dockd/appender.py: whole 4 KiB blocks with O_DIRECT, the tail carried to the next batch).
hashlib releases the GIL on large buffers; the AEAD does not, so encryption stays in the
reading thread. One hash thread, not one per hash: on two cores two CPU-bound threads (reader
and hasher) beat three, by ~15 % in whole-process runs here (docs/performance.md; see also
/work/shared/notes/performance.md and docs/storage.md). Checkpoints and resuming:
dockd/resume.py.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dockd.appender import ALIGN, Appender, aligned_buffer
from dockd.crypto.header import build_header
from dockd.crypto.keys import X25519Recipient, new_file_key
from dockd.crypto.stream import CHUNK, NONCE_SIZE, SEALED, PayloadSealer, payload_key
from dockd.driver import RecordingStream
from dockd.errors import (
    DeviceError,
    DockdError,
    IntegrityError,
    ProtocolError,
    StorageError,
    StoreExists,
)
from dockd.resume import (
    DEFAULT_BATCH,
    ResumeState,
    discard_partial,
    load_resume,
    write_sidecar,
)
from dockd.store import (
    create_partial,
    ensure_dir,
    fsync_dir,
    publish,
    remove_quietly,
    sidecar_path,
    storage_error,
)

__all__ = ["DEFAULT_BATCH", "FileStamp", "ResumeState", "Written", "discard_partial",
           "ingest_stream", "load_resume"]

DEFAULT_CHECKPOINT = 64 << 20
_SLOTS = 2  # batches in flight per transfer: one being read and sealed, one hashed and written

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
            sidecar = sidecar_path(self.partial)
            if os.path.lexists(sidecar):  # a checkpointed transfer: its key goes, durably,
                remove_quietly(sidecar)     # before the name (nothing to sync when none was)
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


# --- ingest ----------------------------------------------------------------------------


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


class _Slot:
    def __init__(self, batch: int, headroom: int) -> None:
        self.inbuf = bytearray(batch)
        # headroom in front of the ciphertext holds the previous batch's unaligned tail
        self._raw, self.out = aligned_buffer(headroom + batch // CHUNK * SEALED + SEALED)
        self.pending: list[Future[None]] = []

    def wait(self) -> None:
        for fut in self.pending:
            fut.result()
        self.pending.clear()


def _plan(
    stream: RecordingStream,
    partial: Path,
    recipients: Sequence[X25519Recipient],
    expected_size: int,
    expected_sha256: bytes | None,
    resume_state: ResumeState | None,
) -> tuple[int, ResumeState, Appender]:
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
        return fd, state, Appender(fd, pos, carry)
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
    return fd, state, Appender(fd, 0, prefix)


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
        write_sidecar(partial_path, state)
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
