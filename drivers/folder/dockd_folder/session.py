"""`CameraSession` of a camera that is a directory: a mounted mass-storage volume or one
camera's sub-folder of an export folder.

A recording is a regular file whose name matches the options' patterns, found beneath the
camera's directory (never through a symlink, never outside it: dockd_folder.tree). Its name
is its path below that directory ('/'-joined parts, each checked like any device name); its
start is its modification time; its hash is the vendor's sidecar if there is one, else none
(custody starts with the hash taken while reading). A file modified within `settle_s`, or
waiting for its completion marker, is not listed yet: it may still be written (export
folders only: a mounted camera writes nothing while docked). A folder that cannot be read,
or lies deeper than `max_depth`, is refused as an entry of its own, never silently skipped.

Every file is remembered as it was listed (device, inode, size, mtime, ctime). Reading checks it is
still that file and still unchanged when the last byte is read; deleting checks it again
right before the unlink, then fsyncs the directory; closing syncs the filesystem, so the
volume is clean to unmount.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import stat
import time
from datetime import UTC, datetime
from pathlib import Path

from dockd.errors import DeviceRefused, ProtocolError, Unsupported
from dockd.events import FolderRef, VolumeRef
from dockd.model import (
    BatterySnapshot,
    CameraIdentity,
    ListingEntry,
    RecordingInfo,
    RefusedRecording,
    ShiftLog,
    escape_name,
    name_problem,
    serial_problem,
)
from dockd_folder.options import FolderOptions
from dockd_folder.tree import O_DIR, O_FILE, Entry, device_error, open_parent, same_file, walk

_MAX_HASH_FILE = 512
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _syncfs(fd: int) -> None:
    """Write the volume's dirty data out (syncfs(2)): clean to unmount."""
    _LIBC.syncfs(fd)


class FolderSession:
    """Implements `dockd.driver.CameraSession` for a directory."""

    def __init__(self, ref: VolumeRef | FolderRef, *, options: FolderOptions) -> None:
        self.ref = ref
        self.opts = options
        base = ref.mount if isinstance(ref, VolumeRef) else ref.path
        self._settles = isinstance(ref, FolderRef)  # a mounted camera writes nothing meanwhile
        try:
            fd = os.open(base, O_DIR)
        except OSError as exc:
            raise device_error(exc, f"opening {base}") from exc
        try:
            for part in (p for p in options.subdir.split("/") if p):
                sub = os.open(part, O_DIR, dir_fd=fd)
                os.close(fd)
                fd = sub
        except OSError as exc:
            os.close(fd)  # a leaked fd would keep the volume busy: it could not be unmounted
            raise device_error(exc, f"opening {options.subdir} in {base}") from exc
        self._root = fd
        self._listed: dict[str, Entry] = {}

    # --- who it is -----------------------------------------------------------------------

    def identity(self) -> CameraIdentity:
        # a directory keeps no clock: the host's time is its time (no drift to judge)
        return CameraIdentity(serial=self._serial(), model=self.opts.model, firmware="n/a",
                              vendor=self.opts.vendor, clock=datetime.now(UTC))

    def _serial(self) -> str:
        ref, tried = self.ref, []
        for source in self.opts.serial_from:
            if isinstance(ref, VolumeRef):
                value = {"usb": ref.usb_serial, "label": ref.fs_label, "uuid": ref.fs_uuid,
                         "folder": Path(ref.mount).name}[source]
            else:
                value = Path(ref.path).name if source == "folder" else None
            if not value:
                continue
            serial = self.opts.serial_prefix + value
            problem = serial_problem(serial)
            if problem is None:
                return serial
            tried.append(f"{source}: {problem}")
        raise ProtocolError("no usable camera serial (" + ("; ".join(tried) or
                            "none of " + ", ".join(self.opts.serial_from) + " is known") + ")")

    def battery(self) -> BatterySnapshot:
        raise Unsupported("a camera read as a directory reports no battery")

    def shift_log(self) -> ShiftLog:
        raise Unsupported("a camera read as a directory keeps no shift log")

    def set_clock(self, when: datetime) -> None:
        raise Unsupported("a camera read as a directory has no clock to set")

    # --- what it holds -----------------------------------------------------------------

    def recordings(self) -> list[ListingEntry]:
        entries = list(walk(self._root, max_depth=self.opts.max_depth,
                            max_entries=self.opts.max_entries))
        by_parts = {e.parts: e for e in entries}
        now = time.time()
        out: list[ListingEntry] = []
        self._listed.clear()
        for e in entries:
            leaf = e.parts[-1].decode("utf-8", "surrogateescape")
            started = datetime.fromtimestamp(e.st.st_mtime_ns / 1e9, UTC)
            if e.problem is not None:  # a folder not read: say so, or it is silently missing
                out.append(RefusedRecording(label=escape_name(b"/".join(e.parts)) + "/",
                                            reason=e.problem, size=0, started=started,
                                            sha256=None))
                continue
            if not self.opts.is_recording(leaf):
                continue
            problem = next((p for p in map(name_problem, e.parts) if p), None)
            if problem is None and stat.S_ISLNK(e.st.st_mode):
                problem = "is a symbolic link: not followed"
            elif problem is None and not stat.S_ISREG(e.st.st_mode):
                problem = "is not a regular file (a device, FIFO or socket)"
            sha: bytes | None = None
            if problem is None and self.opts.hash_suffix:
                sha, problem = self._vendor_hash(by_parts.get(_sibling(e, self.opts.hash_suffix)))
            if problem is not None:
                out.append(RefusedRecording(label=escape_name(b"/".join(e.parts)),
                                            reason=problem, size=e.st.st_size, started=started,
                                            sha256=sha))
                continue
            if self.opts.complete_suffix and _sibling(e, self.opts.complete_suffix) not in (
                    by_parts):
                continue  # the vendor has not marked it complete yet
            if self._settles and 0 <= now - e.st.st_mtime < self.opts.settle_s:
                # may still be written: the watcher looks again once it settled (a file
                # dated in the future is no fresher for it: a camera clock running ahead)
                continue
            name = "/".join(p.decode() for p in e.parts)
            self._listed[name] = e
            out.append(RecordingInfo(name=name, size=e.st.st_size, started=started,
                                     duration_s=0.0, prerecord_s=0.0, sha256=sha))
        return out

    def _vendor_hash(self, side: Entry | None) -> tuple[bytes | None, str | None]:
        """The vendor's SHA-256 from its sidecar: (hash, None), (None, None) when there is
        no sidecar, (None, reason) when there is one that does not hold a SHA-256."""
        if side is None:
            return None, None
        if not stat.S_ISREG(side.st.st_mode) or side.st.st_size > _MAX_HASH_FILE:
            return None, "its hash sidecar is not a small regular file"
        try:
            parent = open_parent(self._root, side.parts)
            try:
                fd = os.open(side.parts[-1], O_FILE, dir_fd=parent)
            finally:
                os.close(parent)
            try:
                text = os.read(fd, _MAX_HASH_FILE).decode("ascii", "replace")
            finally:
                os.close(fd)
        except OSError as exc:
            return None, f"its hash sidecar cannot be read: {exc.strerror}"
        token = (text.split() or [""])[0].lower()
        if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
            return None, "its hash sidecar does not hold a SHA-256"
        return bytes.fromhex(token), None

    def open_recording(self, name: str, offset: int = 0) -> FolderStream:
        entry = self._entry(name)
        if not 0 <= offset <= entry.st.st_size:
            raise ValueError(f"offset {offset} is outside 0..{entry.st.st_size}")
        try:
            parent = open_parent(self._root, entry.parts)
            try:
                fd = os.open(entry.parts[-1], O_FILE, dir_fd=parent)
            finally:
                os.close(parent)
        except OSError as exc:
            raise device_error(exc, f"opening {escape_name(name.encode())}") from exc
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or not same_file(st, entry.st):
            os.close(fd)
            raise ProtocolError("the file changed (replaced, grown or rewritten) since it was "
                                "listed")
        return FolderStream(fd, entry.st, offset)

    def delete_recording(self, name: str) -> None:
        """Unlink the file the listing saw — only if it is still exactly that file — and its
        sidecars, then fsync the directory."""
        entry = self._entry(name)
        try:
            parent = open_parent(self._root, entry.parts)
        except OSError as exc:
            raise device_error(exc, "opening its folder to delete it") from exc
        try:
            leaf = entry.parts[-1]
            now = os.stat(leaf, dir_fd=parent, follow_symlinks=False)
            if not same_file(now, entry.st):
                raise DeviceRefused("the file changed since it was listed: not deleted")
            os.unlink(leaf, dir_fd=parent)
            for suffix in (self.opts.hash_suffix, self.opts.complete_suffix):
                if suffix:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(leaf + suffix.encode(), dir_fd=parent)
            os.fsync(parent)
        except OSError as exc:
            raise device_error(exc, "deleting a recording") from exc
        finally:
            os.close(parent)
        self._listed.pop(name, None)

    def close(self) -> None:
        if self._root < 0:
            return
        try:
            _syncfs(self._root)
        finally:
            os.close(self._root)
            self._root = -1

    def _entry(self, name: str) -> Entry:
        entry = self._listed.get(name)
        if entry is None:
            raise DeviceRefused("not a recording of the last listing")
        return entry


def _sibling(e: Entry, suffix: str) -> tuple[bytes, ...]:
    return (*e.parts[:-1], e.parts[-1] + suffix.encode())


class FolderStream:
    """A recording file read from `offset`, never past the size it was listed with; at its
    end the file must still be unchanged (a file that grew or was rewritten while read is a
    protocol error, and the attempt is tried again once it settled)."""

    def __init__(self, fd: int, listed: os.stat_result, offset: int) -> None:
        self._fd = fd
        self._listed = listed
        self._pos = offset

    @property
    def offset(self) -> int:
        return self._pos

    @property
    def size(self) -> int:
        return self._listed.st_size

    def readinto(self, buffer: memoryview) -> int:
        if self._fd < 0:
            raise ValueError("stream is closed")
        want = min(len(buffer), self.size - self._pos)
        try:
            if want <= 0:
                if not same_file(os.fstat(self._fd), self._listed):
                    raise ProtocolError("the file changed while it was read")
                return 0
            n = os.preadv(self._fd, [buffer[:want]], self._pos)
        except OSError as exc:
            raise device_error(exc, "reading a recording") from exc
        if n == 0:
            raise ProtocolError(f"the file ends at byte {self._pos}, it was listed with "
                                f"{self.size}")
        self._pos += n
        return n

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
