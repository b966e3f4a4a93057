"""Single-pass ingest: real files, fsync, the real `age` binary, a real tmpfs for ENOSPC."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import pytest
from dockd_sim.content import GeneratedContent

from dockd import appender
from dockd.crypto import CHUNK, SEALED, X25519Identity, decrypt_file, load_identities
from dockd.errors import (
    DeviceGone,
    IntegrityError,
    ProtocolError,
    StorageError,
    StoreExists,
    StoreFull,
)
from dockd.pipeline import ResumeState, Written, ingest_stream, load_resume
from dockd.store import list_partials, partial_path, sidecar_path

HAVE_AGE = shutil.which("age") is not None and shutil.which("age-keygen") is not None
needs_age = pytest.mark.skipif(not HAVE_AGE, reason="the age binary is not installed")


class ContentStream:
    """A RecordingStream over simulated recording bytes, with the faults a camera shows."""

    def __init__(self, content: GeneratedContent, offset: int = 0, *, fail_at: int | None = None,
                 announce: int | None = None, end_early: int | None = None,
                 piece: int = 300_000) -> None:
        self.content = content
        self.offset = offset
        self.size = content.size if announce is None else announce
        self.fail_at = fail_at
        self.end_early = end_early
        self.piece = piece  # cameras hand out odd-sized pieces, not whole buffers
        self.closed = False

    def readinto(self, buffer: memoryview) -> int:
        limit = min(len(buffer), self.piece)
        if self.fail_at is not None:
            if self.offset >= self.fail_at:
                raise DeviceGone("camera unplugged")
            limit = min(limit, self.fail_at - self.offset)
        if self.end_early is not None:
            limit = min(limit, max(0, self.end_early - self.offset))
        n = self.content.read_into(self.offset, buffer[:limit])  # ignores `size`: hostile
        self.offset += n
        return n

    def close(self) -> None:
        self.closed = True


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, X25519Identity]:
    path = tmp_path_factory.mktemp("keys") / "key.txt"
    if HAVE_AGE:
        subprocess.run(["age-keygen", "-o", str(path)], check=True, capture_output=True)
    else:
        ident = X25519Identity.generate()
        path.write_text(str(ident) + "\n")
    return path, load_identities(path)[0]


def _paths(root: Path, name: str = "VID_0001.MP4") -> tuple[Path, Path]:
    final = root / "SN1" / "2026" / "11" / "26" / f"{name}.age"
    return partial_path(final, "t1"), final


def _ingest(content: GeneratedContent, root: Path, ident: X25519Identity, **kw) -> Written:
    """Write and publish (the daemon records its intent in between)."""
    partial, final = _paths(root)
    stream = kw.pop("stream", None) or ContentStream(content)
    written = ingest_stream(
        stream,
        expected_size=content.size,
        expected_sha256=kw.pop("expected_sha256", None) or content.sha256(),
        recipients=[ident.recipient()],
        partial_path=partial,
        final_path=final,
        **kw,
    )
    written.publish(final)
    return written


def _age_plaintext_sha(path: Path, keyfile: Path) -> str:
    done = subprocess.run(["age", "-d", "-i", str(keyfile), str(path)], check=False,
                          capture_output=True)
    assert done.returncode == 0, done.stderr
    return hashlib.sha256(done.stdout).hexdigest()


@needs_age
@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 3 * (1 << 20) + 5])
def test_ingest_writes_verified_age_file(tmp_path, keys, size):
    keyfile, ident = keys
    content = GeneratedContent(size, seed=size)
    progress: list[int] = []
    result = _ingest(content, tmp_path, ident, on_progress=lambda done, _: progress.append(done))
    partial, final = _paths(tmp_path)
    assert result.plaintext_sha256 == content.sha256()
    assert result.stored_sha256 == hashlib.sha256(final.read_bytes()).digest()
    assert result.bytes == size and result.stored_bytes == final.stat().st_size
    assert _age_plaintext_sha(final, keyfile) == content.sha256().hex()
    assert final.stat().st_mode & 0o777 == 0o600
    assert (final.parent.stat().st_mode & 0o777) == 0o700
    assert not partial.exists() and not sidecar_path(partial).exists()
    assert list_partials(tmp_path) == []
    assert progress[-1] == size


def test_hash_mismatch_raises_and_removes_partial(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(200_000, seed=1)
    with pytest.raises(IntegrityError, match="mismatch"):
        _ingest(content, tmp_path, ident, expected_sha256=bytes(32))
    partial, final = _paths(tmp_path)
    assert not partial.exists() and not final.exists()
    assert list_partials(tmp_path) == []


def test_stream_longer_than_announced_is_protocol_error(tmp_path, keys):
    _, ident = keys
    real = GeneratedContent(300_000, seed=2)
    small = GeneratedContent(200_000, seed=2)  # what the listing claimed
    stream = ContentStream(real, announce=200_000)
    with pytest.raises(ProtocolError, match="more than"):
        _ingest(small, tmp_path, ident, stream=stream)
    assert not _paths(tmp_path)[1].exists()


def test_stream_ending_early_is_protocol_error(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(500_000, seed=3)
    with pytest.raises(ProtocolError, match="ended at byte 123456"):
        _ingest(content, tmp_path, ident, stream=ContentStream(content, end_early=123_456))
    assert not _paths(tmp_path)[1].exists()


def test_announced_size_disagreeing_with_listing_is_refused(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(1000, seed=4)
    with pytest.raises(ProtocolError, match="announces"):
        _ingest(content, tmp_path, ident, stream=ContentStream(content, announce=999))


def test_a_write_lost_without_an_error_never_gets_a_final_name(tmp_path, keys, monkeypatch):
    # the unaligned last tail "written" but gone (what ENOSPC on that tail once did, silently):
    # the file would be short; it must not be published, where a restart would adopt it
    _, ident = keys
    content = GeneratedContent(300_000, seed=9)
    monkeypatch.setattr(appender.Appender, "_write_tail", lambda self, tail, pos: None)
    with pytest.raises(StorageError, match=r"holds \d+ of the \d+ bytes written; removed"):
        _ingest(content, tmp_path, ident)
    partial, final = _paths(tmp_path)
    assert not final.exists() and not partial.exists()


def test_existing_final_is_never_overwritten(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(1000, seed=5)
    _, final = _paths(tmp_path)
    final.parent.mkdir(parents=True)
    final.write_bytes(b"older evidence")
    with pytest.raises(StoreExists):
        _ingest(content, tmp_path, ident)
    assert final.read_bytes() == b"older evidence"


@needs_age
@pytest.mark.parametrize("fail_at", [1, CHUNK - 1, CHUNK, CHUNK + 1, 777_777, 2_500_000])
def test_resume_after_interruption_gives_one_valid_file(tmp_path, keys, fail_at):
    keyfile, ident = keys
    content = GeneratedContent(3 * (1 << 20) + 4321, seed=fail_at)
    partial, final = _paths(tmp_path)
    with pytest.raises(DeviceGone):
        _ingest(content, tmp_path, ident, stream=ContentStream(content, fail_at=fail_at),
                checkpoint_every=CHUNK)
    state = load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                        recipients=[ident.recipient()])
    if fail_at < CHUNK:  # no complete chunk arrived: nothing worth resuming was kept
        assert state is None and not partial.exists()
        offset = 0
    else:
        assert state is not None
        # every complete chunk that arrived before the failure is kept
        assert state.plaintext_offset == fail_at // CHUNK * CHUNK
        assert partial.stat().st_size == state.stored_length
        offset = state.plaintext_offset
    result = _ingest(content, tmp_path, ident, stream=ContentStream(content, offset),
                     resume_state=state)
    assert result.resumed_from == offset
    assert result.plaintext_sha256 == content.sha256()
    assert result.stored_sha256 == hashlib.sha256(final.read_bytes()).digest()
    assert _age_plaintext_sha(final, keyfile) == content.sha256().hex()
    assert not sidecar_path(partial).exists() and not partial.exists()


def test_resume_twice_in_a_row(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(2 * (1 << 20), seed=9)
    partial, final = _paths(tmp_path)
    state: ResumeState | None = None
    for fail_at in (300_000, 1_100_000):
        offset = state.plaintext_offset if state else 0
        with pytest.raises(DeviceGone):
            _ingest(content, tmp_path, ident, resume_state=state, checkpoint_every=CHUNK,
                    stream=ContentStream(content, offset, fail_at=fail_at))
        state = load_resume(partial, expected_size=content.size,
                            expected_sha256=content.sha256(), recipients=[ident.recipient()])
        assert state is not None and state.plaintext_offset == fail_at // CHUNK * CHUNK
    assert state is not None
    _ingest(content, tmp_path, ident, resume_state=state,
            stream=ContentStream(content, state.plaintext_offset))
    assert hashlib.sha256(b"".join(decrypt_file(final, [ident]))).digest() == content.sha256()


def _interrupted(tmp_path: Path, ident: X25519Identity, content: GeneratedContent) -> Path:
    partial, _ = _paths(tmp_path)
    with pytest.raises(DeviceGone):
        _ingest(content, tmp_path, ident, stream=ContentStream(content, fail_at=400_000),
                checkpoint_every=CHUNK)
    assert sidecar_path(partial).exists()
    return partial


def test_resume_refused_when_recipients_changed(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(1 << 20, seed=10)
    partial = _interrupted(tmp_path, ident, content)
    other = X25519Identity.generate().recipient()
    state = load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                        recipients=[other])
    assert state is None
    assert not partial.exists() and not sidecar_path(partial).exists()


def test_resume_refused_for_another_recording(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(1 << 20, seed=11)
    partial = _interrupted(tmp_path, ident, content)
    assert load_resume(partial, expected_size=content.size, expected_sha256=bytes(32),
                       recipients=[ident.recipient()]) is None
    assert not partial.exists()


def test_damaged_partial_is_discarded_not_resumed(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(1 << 20, seed=12)
    partial = _interrupted(tmp_path, ident, content)
    doc = json.loads(sidecar_path(partial).read_bytes())
    with partial.open("r+b") as f:  # flip a byte inside a durable chunk
        f.seek(doc["payload_start"] + SEALED + 10)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    assert load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                       recipients=[ident.recipient()]) is None
    assert not partial.exists()


def test_sidecar_is_private_and_holds_only_resume_facts(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(1 << 20, seed=13)
    partial = _interrupted(tmp_path, ident, content)
    assert sidecar_path(partial).stat().st_mode & 0o777 == 0o600
    assert partial.stat().st_mode & 0o777 == 0o600
    doc = json.loads(sidecar_path(partial).read_bytes())
    assert set(doc) == {"version", "file_key", "payload_nonce", "payload_start", "chunks",
                        "expected_size", "expected_sha256", "recipients"}  # no plaintext facts
    assert doc["chunks"] == 400_000 // CHUNK
    assert doc["recipients"] == [str(ident.recipient())]


RESTART_CHILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from dockd.crypto import parse_recipient
    from dockd.pipeline import ingest_stream
    from dockd_sim.content import GeneratedContent

    class Slow:
        def __init__(self, content):
            self.content, self.offset, self.size = content, 0, content.size
        def readinto(self, buf):
            if self.offset >= 1_500_000:
                time.sleep(3600)  # the daemon dies here, mid-recording
            n = self.content.read_into(self.offset, buf[:100_000])
            self.offset += n
            return n
        def close(self):
            pass

    content = GeneratedContent(int(sys.argv[4]), seed=77)
    ingest_stream(Slow(content), expected_size=content.size, expected_sha256=content.sha256(),
                  recipients=[parse_recipient(sys.argv[3])], partial_path=Path(sys.argv[1]),
                  final_path=Path(sys.argv[2]), checkpoint_every=65536).publish(Path(sys.argv[2]))
""")


@needs_age
def test_resume_after_daemon_killed(tmp_path, keys):
    """SIGKILL the ingesting process; a new process resumes from disk alone."""
    keyfile, ident = keys
    content = GeneratedContent(2 * (1 << 20) + 99, seed=77)
    partial, final = _paths(tmp_path)
    child = subprocess.Popen(
        [sys.executable, "-c", RESTART_CHILD, str(partial), str(final),
         str(ident.recipient()), str(content.size)]
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            side = sidecar_path(partial)
            if side.exists() and json.loads(side.read_bytes() or b"{}").get("chunks", 0) >= 8:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the child never checkpointed")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    state = load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                        recipients=[ident.recipient()])
    assert state is not None and state.plaintext_offset >= 8 * CHUNK
    _ingest(content, tmp_path, ident, resume_state=state,
            stream=ContentStream(content, state.plaintext_offset))
    assert _age_plaintext_sha(final, keyfile) == content.sha256().hex()


def test_memory_stays_bounded(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(48 * (1 << 20), seed=14)
    stream = ContentStream(content, piece=1 << 20)
    digest = content.sha256()
    tracemalloc.start()
    try:
        _ingest(content, tmp_path, ident, stream=stream, expected_sha256=digest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # two 1 MiB input + two ~1 MiB output batches plus the stream's own scratch buffers
    # (measured ~4.2 MiB); a third slot or a per-batch leak would pass 6 MiB
    assert peak < 6 * (1 << 20), peak


@pytest.fixture
def small_fs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)],
                          check=False, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_enospc_is_store_full_and_partial_removed(small_fs, keys):
    _, ident = keys
    content = GeneratedContent(4 * (1 << 20), seed=15)
    with pytest.raises(StoreFull):
        _ingest(content, small_fs, ident, checkpoint_every=CHUNK)
    partial, final = _paths(small_fs)
    assert not partial.exists() and not final.exists()
    assert list_partials(small_fs) == []
    # the space is back: a recording that fits goes through on the same filesystem
    fits = GeneratedContent(256 * 1024, seed=16)
    result = _ingest(fits, small_fs, ident)
    assert result.plaintext_sha256 == fits.sha256()


@needs_age
@pytest.mark.parametrize("how", ["fcntl refused", "write refused"])
def test_buffered_fallback_when_filesystem_refuses_direct_io(tmp_path, keys, monkeypatch, how):
    """Some filesystems refuse O_DIRECT (EINVAL): ingest and resume must still be exact."""
    keyfile, ident = keys
    if how == "fcntl refused":
        monkeypatch.setattr(appender.Appender, "_set_direct", lambda self, on: False)
    else:
        real_pwrite = os.pwrite

        def pwrite(fd, data, offset):
            if appender.fcntl.fcntl(fd, appender.fcntl.F_GETFL) & os.O_DIRECT:
                raise OSError(errno.EINVAL, "Invalid argument")
            return real_pwrite(fd, data, offset)

        monkeypatch.setattr(appender.os, "pwrite", pwrite)
    content = GeneratedContent(2 * (1 << 20) + 3, seed=21)
    partial, final = _paths(tmp_path)
    with pytest.raises(DeviceGone):
        _ingest(content, tmp_path, ident, stream=ContentStream(content, fail_at=1_234_567),
                checkpoint_every=CHUNK)
    state = load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                        recipients=[ident.recipient()])
    assert state is not None and state.plaintext_offset == 1_234_567 // CHUNK * CHUNK
    _ingest(content, tmp_path, ident, resume_state=state,
            stream=ContentStream(content, state.plaintext_offset))
    assert _age_plaintext_sha(final, keyfile) == content.sha256().hex()


def _written(content: GeneratedContent, root: Path, ident: X25519Identity, **kw) -> Written:
    partial, final = _paths(root)
    return ingest_stream(ContentStream(content), expected_size=content.size,
                         expected_sha256=content.sha256(), recipients=[ident.recipient()],
                         partial_path=partial, final_path=final, **kw)


def test_publish_links_the_inode_that_was_written_never_what_the_name_points_to(tmp_path, keys):
    """A second writer (or anyone) replacing the partial's name between the write and the
    publish must not get its file published as this transfer's copy."""
    _, ident = keys
    content = GeneratedContent(300_000, seed=5)
    written = _written(content, tmp_path, ident, checkpoint_every=CHUNK, batch_bytes=CHUNK)
    partial, final = _paths(tmp_path)
    impostor = partial.with_name("impostor")
    impostor.write_bytes(b"truncated" * 10)
    os.replace(impostor, partial)  # the name now points at another inode
    with pytest.raises(StorageError, match="no longer the file this transfer wrote"):
        written.publish(final)
    assert not final.exists()
    assert not sidecar_path(partial).exists()  # the key never outlives its partial


def test_publish_refuses_a_partial_changed_after_its_last_fsync(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(300_000, seed=6)
    written = _written(content, tmp_path, ident)
    partial, final = _paths(tmp_path)
    with partial.open("ab") as f:  # same inode, one more byte
        f.write(b"x")
    with pytest.raises(StorageError, match="replaced or changed"):
        written.publish(final)
    assert not final.exists()


def test_published_file_has_no_resume_state_beside_it(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(3 * CHUNK + 7, seed=7)
    written = _written(content, tmp_path, ident, checkpoint_every=CHUNK, batch_bytes=CHUNK)
    partial, final = _paths(tmp_path)
    assert sidecar_path(partial).exists()  # checkpointed while it was written
    stamp = written.publish(final)
    assert final.exists() and not partial.exists() and not sidecar_path(partial).exists()
    assert stamp.same_inode(os.lstat(final)) and stamp.size == final.stat().st_size


def test_keep_leaves_the_partial_to_resume_from(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(3 * CHUNK + 7, seed=8)
    written = _written(content, tmp_path, ident, checkpoint_every=CHUNK, batch_bytes=CHUNK)
    written.keep()
    partial, _ = _paths(tmp_path)
    state = load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                        recipients=[ident.recipient()])
    assert state is not None and state.plaintext_offset > 0
    written.discard()  # after keep: closes nothing twice, removes nothing
    assert partial.exists()


def test_a_long_resume_check_beats_the_watchdog(tmp_path, keys):
    _, ident = keys
    content = GeneratedContent(40 * CHUNK, seed=9)
    partial, final = _paths(tmp_path)
    with pytest.raises(DeviceGone):
        ingest_stream(ContentStream(content, fail_at=38 * CHUNK), expected_size=content.size,
                      expected_sha256=content.sha256(), recipients=[ident.recipient()],
                      partial_path=partial, final_path=final, checkpoint_every=CHUNK)
    beats: list[float] = []
    state = load_resume(partial, expected_size=content.size, expected_sha256=content.sha256(),
                        recipients=[ident.recipient()], batch_bytes=4 * CHUNK,
                        beat=lambda: beats.append(time.monotonic()))
    assert state is not None and state.chunks == 38
    assert len(beats) == 10  # one per 4-chunk batch of the 38 durable chunks
