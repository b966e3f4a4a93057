"""The folder driver on plain temporary directories, without a daemon: its options, the walk
beneath a camera's directory, the listing, reading and deleting, and each way a file can
change under a session (drivers/folder/README.md)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dockd_folder import DRIVER
from dockd_folder.options import DEFAULT_PATTERNS, FolderOptions, parse_options
from dockd_folder.session import FolderSession, FolderStream
from dockd_folder.tree import O_DIR, device_error, walk

from dockd.errors import ConfigError, DeviceGone, DeviceRefused, ProtocolError, Unsupported
from dockd.events import FolderRef, UsbDeviceRef, VolumeRef
from dockd.model import RecordingInfo, RefusedRecording

#: an mtime safely older than any settle_s a test uses
OLD = time.time() - 3600


# --- helpers -----------------------------------------------------------------------------


def put(path: Path, data: bytes, *, mtime: float | None = OLD) -> Path:
    """Write a file (parents made) and, unless None, set its mtime in the past."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def put_raw(directory: Path, name: bytes, data: bytes) -> bytes:
    """A file whose name is raw bytes (not necessarily UTF-8)."""
    full = os.fsencode(directory) + b"/" + name
    with open(full, "wb") as f:
        f.write(data)
    os.utime(full, (OLD, OLD))
    return full


def session(cam: Path, **options: Any) -> FolderSession:
    """A session on `cam`, a sub-folder of an export root; settle_s 0 unless given."""
    options.setdefault("settle_s", 0)
    ref = FolderRef(path=str(cam), root=str(cam.parent))
    return FolderSession(ref, options=parse_options(options))


@pytest.fixture
def cam(tmp_path: Path) -> Path:
    """An export root with one camera folder in it (and room beside it for an "outside")."""
    path = tmp_path / "export" / "CAM-0001"
    path.mkdir(parents=True)
    return path


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every camera folder, with a canary recording in it."""
    path = tmp_path / "outside"
    put(path / "canary.mp4", b"CANARY" * 1000)
    return path


def split(listing: list[Any]) -> tuple[dict[str, RecordingInfo], dict[str, RefusedRecording]]:
    ok = {e.name: e for e in listing if isinstance(e, RecordingInfo)}
    refused = {e.label: e for e in listing if isinstance(e, RefusedRecording)}
    assert len(ok) + len(refused) == len(listing)
    return ok, refused


def read_all(stream: FolderStream, chunk: int = 1 << 16) -> bytes:
    buf = bytearray(chunk)
    out = bytearray()
    while True:
        n = stream.readinto(memoryview(buf))
        if n == 0:
            return bytes(out)
        out += buf[:n]


def in_thread(fn: Callable[[], Any], timeout_s: float = 5.0) -> Any:
    """Run fn in a thread; fail (not hang) when it blocks longer than timeout_s."""
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        pytest.fail(f"blocked for more than {timeout_s} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")


def snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under path: content and mtime (the outside world must not change)."""
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(path.rglob("*")) if p.is_file() and not p.is_symlink()}


# --- options -----------------------------------------------------------------------------


def test_options_default() -> None:
    opts = parse_options(None)
    assert opts == FolderOptions()
    assert opts.patterns == DEFAULT_PATTERNS
    assert opts.settle_s == 5.0
    assert opts.serial_from == ("usb", "label", "uuid", "folder")
    assert parse_options({}) == opts


def test_options_good_values() -> None:
    opts = parse_options({
        "patterns": "*.MP4", "case_sensitive": True, "hash_suffix": ".sha256",
        "complete_suffix": ".done", "settle_s": 1.5, "subdir": "DCIM/100MEDIA",
        "serial_from": ["folder"], "serial_prefix": "X-", "vendor": "Acme", "model": "B1",
        "max_depth": 2, "max_entries": 10})
    assert opts.patterns == ("*.MP4",)
    assert opts.case_sensitive is True
    assert (opts.hash_suffix, opts.complete_suffix) == (".sha256", ".done")
    assert opts.settle_s == 1.5
    assert opts.subdir == "DCIM/100MEDIA"
    assert opts.serial_from == ("folder",)
    assert (opts.serial_prefix, opts.vendor, opts.model) == ("X-", "Acme", "B1")
    assert (opts.max_depth, opts.max_entries) == (2, 10)
    assert parse_options({"settle_s": 0}).settle_s == 0.0


BAD_OPTIONS = [
    ("colour", "blue"),
    ("patterns", []),
    ("patterns", [""]),
    ("patterns", ["*.mp4", 3]),
    ("patterns", 7),
    ("case_sensitive", "yes"),
    ("case_sensitive", 1),
    ("hash_suffix", "sha256"),
    ("hash_suffix", "./x"),
    ("hash_suffix", "../../etc/passwd"),
    ("hash_suffix", ".a/b"),
    ("hash_suffix", "." + "x" * 33),
    ("hash_suffix", 5),
    ("complete_suffix", ""),
    ("complete_suffix", ".do ne"),
    ("settle_s", -1),
    ("settle_s", 86_401),
    ("settle_s", True),
    ("settle_s", "5"),
    ("subdir", "../up"),
    ("subdir", "/abs"),
    ("subdir", "a//b"),
    ("subdir", "a/./b"),
    ("subdir", ""),
    ("subdir", 3),
    ("serial_from", ["serial"]),
    ("serial_from", ["usb", "mac"]),
    ("serial_from", []),
    ("serial_prefix", 5),
    ("vendor", ""),
    ("model", ["", "x"]),
    ("max_depth", 0),
    ("max_depth", 65),
    ("max_depth", True),
    ("max_depth", 1.5),
    ("max_entries", 0),
    ("max_entries", 10_000_001),
    ("max_entries", "100"),
]


@pytest.mark.parametrize(("key", "value"), BAD_OPTIONS)
def test_bad_option_is_a_config_error_naming_it(key: str, value: Any) -> None:
    with pytest.raises(ConfigError) as err:
        parse_options({"settle_s": 0, key: value} if key != "settle_s" else {key: value})
    assert err.value.where == key
    assert key in str(err.value)


def test_driver_checks_options_and_bus(cam: Path) -> None:
    ref = FolderRef(path=str(cam), root=str(cam.parent))
    with pytest.raises(ConfigError) as err:
        DRIVER.open_session(ref, timeout_s=1, options={"max_depth": 0})
    assert err.value.where == "max_depth"
    usb = UsbDeviceRef(key="k", port_path="1-1.2", bus_number=1, address=2,
                       vendor_id=0x1234, product_id=0x5678)
    with pytest.raises(Unsupported, match="bus"):
        DRIVER.open_session(usb, timeout_s=1, options={})
    sess = DRIVER.open_session(ref, timeout_s=1, options={"settle_s": 0})
    try:
        assert sess.identity().serial == "CAM-0001"
    finally:
        sess.close()


def test_patterns_are_case_insensitive_by_default() -> None:
    opts = parse_options({"patterns": ["*.mp4"]})
    assert opts.is_recording("A.MP4")
    assert opts.is_recording("b.Mp4")
    assert not opts.is_recording("c.mp4.sha256")
    sensitive = parse_options({"patterns": ["*.MP4"], "case_sensitive": True})
    assert sensitive.is_recording("A.MP4")
    assert not sensitive.is_recording("a.mp4")


# --- the walk ----------------------------------------------------------------------------


def walk_names(root: Path, **limits: int) -> dict[bytes, int]:
    fd = os.open(root, O_DIR)
    try:
        return {b"/".join(e.parts): e.st.st_mode for e in walk(
            fd, max_depth=limits.get("max_depth", 8),
            max_entries=limits.get("max_entries", 1000))}
    finally:
        os.close(fd)


def test_walk_does_not_enter_a_symlinked_directory(cam: Path, outside: Path) -> None:
    put(cam / "DCIM" / "a.mp4", b"a")
    (cam / "DCIM" / "elsewhere").symlink_to(outside, target_is_directory=True)
    found = walk_names(cam)
    assert set(found) == {b"DCIM/a.mp4", b"DCIM/elsewhere"}
    assert stat.S_ISLNK(found[b"DCIM/elsewhere"])
    ok, refused = split(session(cam).recordings())
    assert set(ok) == {"DCIM/a.mp4"}
    assert refused == {}  # "elsewhere" is not a recording's name: not even refused


def test_symlink_to_a_file_outside_is_refused_with_its_reason(cam: Path, outside: Path) -> None:
    put(cam / "ok.mp4", b"ok")
    (cam / "evil.mp4").symlink_to(outside / "canary.mp4")
    (cam / "dir.mp4").symlink_to(outside, target_is_directory=True)
    (cam / "dangling.mp4").symlink_to(cam / "nothing-here")
    before = snapshot(outside)
    sess = session(cam)
    ok, refused = split(sess.recordings())
    assert set(ok) == {"ok.mp4"}
    assert set(refused) == {"evil.mp4", "dir.mp4", "dangling.mp4"}
    for entry in refused.values():
        assert "symbolic link" in entry.reason
    with pytest.raises(DeviceRefused, match="not a recording of the last listing"):
        sess.open_recording("evil.mp4")
    with pytest.raises(DeviceRefused):
        sess.delete_recording("evil.mp4")
    assert snapshot(outside) == before
    assert (cam / "evil.mp4").is_symlink()


def test_fifo_socket_and_device_are_refused_without_blocking(cam: Path) -> None:
    put(cam / "ok.mp4", b"ok")
    os.mkfifo(cam / "pipe.mp4")
    refusals = {"pipe.mp4"}
    try:
        os.mknod(cam / "null.mp4", 0o600 | stat.S_IFCHR, os.makedev(1, 3))
        refusals.add("null.mp4")
    except PermissionError:
        pass  # not root: the FIFO alone
    ok, refused = split(in_thread(session(cam).recordings))
    assert set(ok) == {"ok.mp4"}
    assert set(refused) == refusals
    for entry in refused.values():
        assert "not a regular file" in entry.reason


def test_a_fifo_swapped_in_after_listing_does_not_block_the_read(cam: Path) -> None:
    put(cam / "a.mp4", b"x" * 100)
    sess = session(cam)
    sess.recordings()
    (cam / "a.mp4").unlink()
    os.mkfifo(cam / "a.mp4")
    with pytest.raises(ProtocolError, match="changed"):
        in_thread(lambda: sess.open_recording("a.mp4"))


def test_a_name_that_is_not_utf8_is_refused_with_an_escaped_label(cam: Path) -> None:
    put(cam / "ok.mp4", b"ok")
    put_raw(cam, b"clip\xff.mp4", b"bad")
    os.mkdir(os.fsencode(cam) + b"/D\xfeIR")
    put_raw(cam / os.fsdecode(b"D\xfeIR"), b"inner.mp4", b"inner")
    ok, refused = split(session(cam).recordings())
    assert set(ok) == {"ok.mp4"}
    assert set(refused) == {"clip\\xff.mp4", "D\\xfeIR/inner.mp4"}
    for label, entry in refused.items():
        assert "not UTF-8" in entry.reason
        assert label.isascii() and label.isprintable()
    assert refused["clip\\xff.mp4"].size == 3


@pytest.mark.parametrize("name", ["evil\u202e4pm.mov", "tab\there.mp4", "bell\x07.mp4",
                                  "nl\nname.mp4"])
def test_a_control_or_format_character_is_refused(cam: Path, name: str) -> None:
    put(cam / "ok.mp4", b"ok")
    put(cam / name, b"hostile")
    ok, refused = split(session(cam).recordings())
    assert set(ok) == {"ok.mp4"}
    [(label, entry)] = refused.items()
    assert "control/format character" in entry.reason
    assert label.isascii() and label.isprintable()
    assert "\\u202e" in label or "\\x" in label


def test_max_depth_limits_how_deep_recordings_are_found(cam: Path) -> None:
    put(cam / "top.mp4", b"0")
    put(cam / "a" / "one.mp4", b"1")
    put(cam / "a" / "b" / "two.mp4", b"2")
    put(cam / "a" / "b" / "c" / "three.mp4", b"3")
    ok, _ = split(session(cam, max_depth=2).recordings())
    assert set(ok) == {"top.mp4", "a/one.mp4", "a/b/two.mp4"}
    ok, _ = split(session(cam, max_depth=1).recordings())
    assert set(ok) == {"top.mp4", "a/one.mp4"}
    ok, _ = split(session(cam).recordings())
    assert "a/b/c/three.mp4" in ok


def test_max_entries_refuses_the_listing_as_a_whole(cam: Path) -> None:
    for i in range(6):
        put(cam / "d" / f"{i}.mp4", b"x")
    # 7 entries: the folder "d" and its six files
    ok, _ = split(session(cam, max_entries=7).recordings())
    assert len(ok) == 6
    with pytest.raises(ProtocolError, match="more than 6 entries"):
        session(cam, max_entries=6).recordings()


def as_nobody(fn: Callable[[], Any]) -> Any:
    """fn's result (or its exception's text) in a forked child that dropped root: root
    reads whatever the permissions say. The session's fds were opened before the fork."""
    if os.geteuid() != 0:
        return fn()
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(rd)
            os.setgroups([])
            os.setresgid(65534, 65534, 65534)
            os.setresuid(65534, 65534, 65534)
            try:
                out = repr(fn())
            except Exception as exc:
                out = f"{type(exc).__name__}: {exc}"
            os.write(wr, out.encode())
        finally:
            os._exit(0)
    os.close(wr)
    with os.fdopen(rd, "rb") as f:
        text = f.read().decode()
    os.waitpid(pid, 0)
    return text


def test_an_unreadable_sub_folder_is_refused_not_silently_skipped(cam: Path) -> None:
    put(cam / "ok.mp4", b"ok")
    put(cam / "closed" / "x.mp4", b"x")
    (cam / "closed").chmod(0)
    sess = session(cam)
    try:
        text = as_nobody(lambda: sorted(
            (getattr(e, "name", None) or e.label, getattr(e, "reason", ""))
            for e in sess.recordings()))
    finally:
        (cam / "closed").chmod(0o755)
        sess.close()
    assert text == repr([("closed/", "a folder that cannot be read: Permission denied"),
                         ("ok.mp4", "")])


def test_a_folder_deeper_than_max_depth_is_refused_not_silently_skipped(cam: Path) -> None:
    put(cam / "a" / "b" / "deep.mp4", b"d")
    ok, refused = split(session(cam, max_depth=1).recordings())
    assert ok == {} and list(refused) == ["a/b/"]
    assert "deeper than max_depth (1)" in refused["a/b/"].reason


def test_an_unreadable_file_is_permission_denied(cam: Path) -> None:
    put(cam / "locked.mp4", b"x" * 10)
    (cam / "locked.mp4").chmod(0)
    sess = session(cam)
    try:
        sess.recordings()
        text = as_nobody(lambda: sess.open_recording("locked.mp4"))
    finally:
        sess.close()
    assert text == "DeviceRefused: permission denied while opening locked.mp4"


# --- the listing -------------------------------------------------------------------------


def test_listing_names_sizes_and_start_times(cam: Path) -> None:
    put(cam / "DCIM" / "100MEDIA" / "FILE0001.MP4", b"a" * 1234, mtime=1_700_000_000.5)
    put(cam / "DCIM" / "100MEDIA" / "notes.txt", b"not a recording")
    put(cam / "root.mov", b"m")
    ok, refused = split(session(cam).recordings())
    assert refused == {}
    assert set(ok) == {"DCIM/100MEDIA/FILE0001.MP4", "root.mov"}
    info = ok["DCIM/100MEDIA/FILE0001.MP4"]
    assert info.size == 1234
    assert info.started == datetime.fromtimestamp(1_700_000_000.5, UTC)
    assert info.sha256 is None


def test_listing_patterns_are_case_insensitive_unless_asked(cam: Path) -> None:
    for name in ("A.MP4", "b.mp4", "c.Mp4", "d.txt", "e.mp4.bak"):
        put(cam / name, b"x")
    ok, _ = split(session(cam, patterns=["*.mp4"]).recordings())
    assert set(ok) == {"A.MP4", "b.mp4", "c.Mp4"}
    ok, _ = split(session(cam, patterns=["*.MP4"], case_sensitive=True).recordings())
    assert set(ok) == {"A.MP4"}


def test_subdir_limits_the_listing_and_must_be_a_real_folder(cam: Path, outside: Path) -> None:
    put(cam / "DCIM" / "a.mp4", b"a")
    put(cam / "MISC" / "b.mp4", b"b")
    ok, _ = split(session(cam, subdir="DCIM").recordings())
    assert set(ok) == {"a.mp4"}
    with pytest.raises(DeviceRefused):
        session(cam, subdir="NOPE")
    (cam / "LINK").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DeviceRefused):
        session(cam, subdir="LINK")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_missing_subdir_leaks_no_fd(cam: Path) -> None:
    before = open_fds()
    for _ in range(3):
        with pytest.raises(DeviceRefused):
            session(cam, subdir="DCIM")
    assert open_fds() == before


def test_a_missing_subdir_is_named_in_the_error(cam: Path) -> None:
    with pytest.raises(DeviceRefused, match="DCIM"):
        session(cam, subdir="DCIM")


def test_settle_s_keeps_a_fresh_file_out(cam: Path) -> None:
    put(cam / "old.mp4", b"old")
    put(cam / "fresh.mp4", b"fresh", mtime=None)
    ok, refused = split(session(cam, settle_s=60).recordings())
    assert set(ok) == {"old.mp4"}
    assert refused == {}
    ok, _ = split(session(cam, settle_s=0).recordings())
    assert set(ok) == {"old.mp4", "fresh.mp4"}


def test_a_file_dated_in_the_future_is_not_hidden_forever(cam: Path) -> None:
    put(cam / "ahead.mp4", b"ahead", mtime=time.time() + 2 * 3600)
    listing = session(cam, settle_s=5).recordings()
    assert [getattr(e, "name", getattr(e, "label", None)) for e in listing] == ["ahead.mp4"]


def test_complete_suffix_waits_for_the_marker(cam: Path) -> None:
    put(cam / "a.mp4", b"a")
    put(cam / "b.mp4", b"b")
    put(cam / "b.mp4.done", b"")
    ok, refused = split(session(cam, complete_suffix=".done").recordings())
    assert set(ok) == {"b.mp4"}
    assert refused == {}


def test_hash_sidecar_used_when_valid(cam: Path) -> None:
    data = os.urandom(5000)
    digest = hashlib.sha256(data).hexdigest()
    put(cam / "a.mp4", data)
    put(cam / "a.mp4.sha256", f"{digest.upper()}  a.mp4\n".encode())  # sha256sum's format
    put(cam / "b.mp4", b"b")  # no sidecar: no hash, custody starts with the read
    ok, refused = split(session(cam, hash_suffix=".sha256").recordings())
    assert refused == {}
    assert ok["a.mp4"].sha256 == bytes.fromhex(digest)
    assert ok["b.mp4"].sha256 is None


@pytest.mark.parametrize(("content", "why"), [
    (b"not a hash\n", "does not hold a SHA-256"),
    (b"ab" * 31 + b"\n", "does not hold a SHA-256"),
    (b"zz" * 32, "does not hold a SHA-256"),
    (b"", "does not hold a SHA-256"),
    (b"a" * 600, "not a small regular file"),
])
def test_malformed_hash_sidecar_refuses_the_recording(cam: Path, content: bytes,
                                                      why: str) -> None:
    put(cam / "a.mp4", b"a")
    put(cam / "a.mp4.sha256", content)
    put(cam / "ok.mp4", b"ok")
    ok, refused = split(session(cam, hash_suffix=".sha256").recordings())
    assert set(ok) == {"ok.mp4"}
    assert why in refused["a.mp4"].reason


def test_a_symlinked_hash_sidecar_refuses_the_recording(cam: Path, outside: Path) -> None:
    put(cam / "a.mp4", b"a")
    put(outside / "h.sha256", hashlib.sha256(b"a").hexdigest().encode())
    (cam / "a.mp4.sha256").symlink_to(outside / "h.sha256")
    ok, refused = split(session(cam, hash_suffix=".sha256").recordings())
    assert ok == {}
    assert "not a small regular file" in refused["a.mp4"].reason


# --- reading -----------------------------------------------------------------------------


def test_reading_gives_the_listed_bytes_from_any_offset(cam: Path) -> None:
    data = os.urandom(300_000)
    put(cam / "a.mp4", data)
    sess = session(cam)
    sess.recordings()
    stream = sess.open_recording("a.mp4")
    try:
        assert stream.size == len(data)
        assert read_all(stream, 4096) == data
        assert stream.offset == len(data)
    finally:
        stream.close()
    stream = sess.open_recording("a.mp4", 123_456)
    try:
        assert stream.offset == 123_456
        assert read_all(stream) == data[123_456:]
    finally:
        stream.close()
    with pytest.raises(ValueError, match="outside"):
        sess.open_recording("a.mp4", len(data) + 1)
    with pytest.raises(DeviceRefused, match="not a recording"):
        sess.open_recording("nope.mp4")
    stream.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        stream.readinto(memoryview(bytearray(10)))


def test_a_file_appended_after_listing_is_read_to_its_listed_size_then_refused(
        cam: Path) -> None:
    data = os.urandom(10_000)
    path = put(cam / "a.mp4", data)
    sess = session(cam)
    sess.recordings()
    stream = sess.open_recording("a.mp4")
    with path.open("ab") as f:
        f.write(b"APPENDED" * 1000)
    buf = bytearray(1 << 20)
    got = bytearray()
    try:
        with pytest.raises(ProtocolError, match="changed while it was read"):
            while True:
                n = stream.readinto(memoryview(buf))
                assert n <= len(data) - len(got)  # never past the listed size
                got += buf[:n]
        assert bytes(got) == data
    finally:
        stream.close()


def test_a_file_grown_before_open_is_refused_at_open(cam: Path) -> None:
    path = put(cam / "a.mp4", b"x" * 100)
    sess = session(cam)
    sess.recordings()
    with path.open("ab") as f:
        f.write(b"more")
    with pytest.raises(ProtocolError, match="since it was listed"):
        sess.open_recording("a.mp4")


def test_a_file_rewritten_in_place_while_read_is_refused(cam: Path) -> None:
    path = put(cam / "a.mp4", b"a" * 4096)
    sess = session(cam)
    sess.recordings()
    stream = sess.open_recording("a.mp4")
    try:
        with path.open("r+b") as f:
            f.write(b"B" * 10)  # same size, new mtime
        os.utime(path, (OLD + 7, OLD + 7))
        with pytest.raises(ProtocolError, match="changed while it was read"):
            read_all(stream)
    finally:
        stream.close()


def test_a_rewrite_that_restores_the_mtime_is_still_caught(cam: Path) -> None:
    path = put(cam / "a.mp4", b"a" * 200_000)
    listed = path.stat()
    sess = session(cam)
    sess.recordings()
    stream = sess.open_recording("a.mp4")
    try:
        time.sleep(0.01)  # a ctime tick apart
        with path.open("r+b") as f:
            f.write(b"B" * 200_000)
        os.utime(path, ns=(listed.st_atime_ns, listed.st_mtime_ns))
        with pytest.raises(ProtocolError):
            read_all(stream)
    finally:
        stream.close()


def test_a_file_cut_short_while_read_is_refused(cam: Path) -> None:
    path = put(cam / "a.mp4", b"a" * 100_000)
    sess = session(cam)
    sess.recordings()
    stream = sess.open_recording("a.mp4")
    try:
        os.truncate(path, 10_000)
        with pytest.raises(ProtocolError, match="ends at byte 10000"):
            read_all(stream)
    finally:
        stream.close()


def test_a_file_replaced_after_listing_is_not_opened(cam: Path) -> None:
    path = put(cam / "a.mp4", b"original" * 100)
    sess = session(cam)
    sess.recordings()
    other = put(cam / "tmp.bin", b"impostor" * 100)  # same size, same mtime
    os.replace(other, path)
    with pytest.raises(ProtocolError, match="since it was listed"):
        sess.open_recording("a.mp4")


def test_a_file_replaced_while_read_keeps_giving_the_listed_file(cam: Path) -> None:
    data = os.urandom(50_000)
    path = put(cam / "a.mp4", data)
    sess = session(cam)
    sess.recordings()
    stream = sess.open_recording("a.mp4")
    try:
        os.replace(put(cam / "tmp.bin", b"X" * 50_000), path)
        assert read_all(stream) == data  # the listed inode, never the newcomer's bytes
    finally:
        stream.close()
    with pytest.raises(DeviceRefused, match="changed since it was listed"):
        sess.delete_recording("a.mp4")
    assert path.read_bytes() == b"X" * 50_000


def test_a_file_deleted_after_listing(cam: Path) -> None:
    path = put(cam / "a.mp4", b"a" * 100)
    sess = session(cam)
    sess.recordings()
    path.unlink()
    with pytest.raises(DeviceRefused, match="No such file"):
        sess.open_recording("a.mp4")
    with pytest.raises(DeviceRefused):
        sess.delete_recording("a.mp4")


def test_a_folder_swapped_for_a_symlink_is_not_followed_when_reading(
        cam: Path, tmp_path: Path) -> None:
    """The listed inode is hard-linked outside too (same device, inode, size, mtime): only
    O_NOFOLLOW stands between the read and the outside."""
    put(cam / "DCIM" / "a.mp4", b"evidence" * 100)
    out = tmp_path / "outside2"
    out.mkdir()
    os.link(cam / "DCIM" / "a.mp4", out / "a.mp4")
    sess = session(cam)
    sess.recordings()
    (cam / "DCIM").rename(cam / "DCIM.old")
    (cam / "DCIM").symlink_to(out, target_is_directory=True)
    with pytest.raises(DeviceRefused):
        sess.open_recording("DCIM/a.mp4")


# --- deleting ----------------------------------------------------------------------------


def test_delete_removes_the_file_and_its_sidecars_only(cam: Path) -> None:
    data = b"recording"
    put(cam / "a.mp4", data)
    put(cam / "a.mp4.sha256", hashlib.sha256(data).hexdigest().encode())
    put(cam / "a.mp4.done", b"")
    put(cam / "b.mp4", b"b")
    put(cam / "b.mp4.done", b"")
    put(cam / "a.mp4.txt", b"the vendor's notes")
    sess = session(cam, hash_suffix=".sha256", complete_suffix=".done")
    ok, _ = split(sess.recordings())
    assert set(ok) == {"a.mp4", "b.mp4"}
    sess.delete_recording("a.mp4")
    assert sorted(p.name for p in cam.iterdir()) == ["a.mp4.txt", "b.mp4", "b.mp4.done"]
    with pytest.raises(DeviceRefused, match="not a recording of the last listing"):
        sess.delete_recording("a.mp4")  # once only
    sess.close()
    sess.close()  # twice is harmless


def test_delete_refuses_a_file_changed_since_listed(cam: Path) -> None:
    path = put(cam / "a.mp4", b"a" * 100)
    sess = session(cam)
    sess.recordings()
    with path.open("ab") as f:
        f.write(b"more footage")
    with pytest.raises(DeviceRefused, match="changed since it was listed"):
        sess.delete_recording("a.mp4")
    assert path.read_bytes().endswith(b"more footage")


def test_delete_never_follows_a_folder_swapped_for_a_symlink(cam: Path, tmp_path: Path) -> None:
    """The listed inode is hard-linked outside too, so only O_NOFOLLOW (not the
    same-file check) stands between the delete and the outside copy."""
    put(cam / "DCIM" / "a.mp4", b"evidence" * 100)
    out = tmp_path / "outside2"
    out.mkdir()
    os.link(cam / "DCIM" / "a.mp4", out / "a.mp4")
    sess = session(cam)
    ok, _ = split(sess.recordings())
    assert set(ok) == {"DCIM/a.mp4"}
    (cam / "DCIM").rename(cam / "DCIM.old")
    (cam / "DCIM").symlink_to(out, target_is_directory=True)
    with pytest.raises(DeviceRefused):
        sess.delete_recording("DCIM/a.mp4")
    assert (out / "a.mp4").read_bytes() == b"evidence" * 100
    assert (cam / "DCIM.old" / "a.mp4").exists()


def test_a_renamed_camera_folder_does_not_redirect_the_session(cam: Path, outside: Path) -> None:
    put(cam / "a.mp4", b"mine")
    sess = session(cam)
    sess.recordings()
    moved = cam.with_name("moved")
    cam.rename(moved)
    cam.symlink_to(outside, target_is_directory=True)
    put(outside / "a.mp4", b"mine")  # the same name outside
    before = snapshot(outside)
    stream = sess.open_recording("a.mp4")
    try:
        assert read_all(stream) == b"mine"
    finally:
        stream.close()
    sess.delete_recording("a.mp4")
    assert not (moved / "a.mp4").exists()  # the camera's own file, through its fd
    assert snapshot(outside) == before


# --- who it is ---------------------------------------------------------------------------


def volume(mount: Path, **fields: Any) -> VolumeRef:
    return VolumeRef(mount=str(mount), device="/dev/loop9", devnum="7:9", fs_type="ext4",
                     **fields)


def test_serial_from_a_folder_name(tmp_path: Path) -> None:
    good = tmp_path / "export" / "BWC-0042"
    good.mkdir(parents=True)
    sess = session(good, serial_prefix="ACME-")
    ident = sess.identity()
    assert ident.serial == "ACME-BWC-0042"
    assert (ident.vendor, ident.model, ident.firmware) == ("unknown", "mass storage", "n/a")
    sess.close()


@pytest.mark.parametrize("name", ["CAM 01", "cam\u202e01", "-leading-dash", "x" * 129])
def test_a_folder_name_that_fails_the_serial_rule_is_a_protocol_error(
        tmp_path: Path, name: str) -> None:
    bad = tmp_path / "export" / name
    bad.mkdir(parents=True)
    sess = session(bad)
    try:
        with pytest.raises(ProtocolError, match=r"no usable camera serial .*folder"):
            sess.identity()
    finally:
        sess.close()


def test_a_folder_camera_has_no_label_or_usb_serial(cam: Path) -> None:
    sess = session(cam, serial_from=["label", "usb"])
    try:
        with pytest.raises(ProtocolError, match="none of label, usb is known"):
            sess.identity()
    finally:
        sess.close()


def test_volume_serial_sources_in_order(tmp_path: Path) -> None:
    mnt = tmp_path / "media" / "BWC 7"
    mnt.mkdir(parents=True)
    ref = volume(mnt, fs_label="BAD LABEL", fs_uuid="1234-ABCD", usb_serial=None)
    sess = FolderSession(ref, options=parse_options({"serial_from": ["usb", "label", "uuid"]}))
    assert sess.identity().serial == "1234-ABCD"
    sess.close()
    ref = volume(mnt, fs_label="BWC-0001", usb_serial="USB123")
    sess = FolderSession(ref, options=parse_options(None))
    assert sess.identity().serial == "USB123"
    sess.close()
    sess = FolderSession(volume(mnt, fs_label="BAD LABEL"),
                         options=parse_options({"serial_from": ["label", "folder"]}))
    with pytest.raises(ProtocolError) as err:
        sess.identity()
    assert "label:" in str(err.value) and "folder:" in str(err.value)
    sess.close()


def test_a_directory_reports_no_battery_shift_log_or_clock(cam: Path) -> None:
    sess = session(cam)
    try:
        with pytest.raises(Unsupported):
            sess.battery()
        with pytest.raises(Unsupported):
            sess.shift_log()
        with pytest.raises(Unsupported):
            sess.set_clock(datetime.now(UTC))
    finally:
        sess.close()


def test_a_camera_folder_that_is_gone_or_a_symlink_cannot_be_opened(
        tmp_path: Path, outside: Path) -> None:
    with pytest.raises(DeviceRefused, match="No such file"):
        session(tmp_path / "export" / "missing")
    link = tmp_path / "export" / "LINKED"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside, target_is_directory=True)
    with pytest.raises(DeviceRefused):
        session(link)


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "kind", "text"), [
    (errno.ENODEV, DeviceGone, "went away"),
    (errno.ENXIO, DeviceGone, "went away"),
    (errno.ESTALE, DeviceGone, "went away"),
    (errno.EACCES, DeviceRefused, "permission denied"),
    (errno.EPERM, DeviceRefused, "permission denied"),
    (errno.EROFS, DeviceRefused, "read-write"),
    (errno.EIO, DeviceRefused, "Input/output error"),
])
def test_filesystem_errors_are_typed(code: int, kind: type[Exception], text: str) -> None:
    err = device_error(OSError(code, os.strerror(code)), "reading a recording")
    assert type(err) is kind
    assert text in str(err)

