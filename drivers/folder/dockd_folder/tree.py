"""Reading beneath one directory and nowhere else.

Every path is resolved from the camera's root directory fd, one component at a time, with
O_NOFOLLOW: a symlink (anywhere in the path), '..', or a name that is not a plain component
can never lead outside the camera's directory, and a renamed mount point cannot redirect an
open session. Nothing here trusts a name: the caller has checked each part with
`dockd.model.name_problem`.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dockd.errors import DeviceError, DeviceGone, DeviceRefused, ProtocolError

O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: O_NONBLOCK: opening a FIFO planted in the tree never blocks
O_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
#: errors that mean the volume went away under us (yanked, unmounted hard)
_GONE = {errno.ENODEV, errno.ENXIO, errno.ESTALE, errno.ENOTCONN, errno.ESHUTDOWN}


@dataclass(frozen=True)
class Entry:
    """One file found under the root: its path parts (raw bytes) and lstat. `problem` is set
    for a folder that was not read (unreadable, or deeper than max_depth): what it holds is
    reported, never silently missing."""

    parts: tuple[bytes, ...]
    st: os.stat_result
    problem: str | None = None


def device_error(exc: OSError, doing: str) -> DeviceError:
    """An OSError of the camera's filesystem as the typed error a session raises."""
    if exc.errno in _GONE:
        return DeviceGone(f"the volume went away while {doing}: {exc.strerror}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return DeviceRefused(f"permission denied while {doing}")
    if exc.errno == errno.EROFS:
        return DeviceRefused(f"the volume is read-only ({doing}): mount it read-write so "
                             "dockd can delete what it has proven stored")
    return DeviceRefused(f"{doing}: {exc.strerror or exc}")


def walk(root_fd: int, *, max_depth: int, max_entries: int) -> Iterator[Entry]:
    """Every non-directory entry beneath root_fd (symlinks and special files included, for
    the caller to refuse), depth first in name order; sub-directories are opened with
    O_NOFOLLOW, so a symlinked directory is an entry, never entered."""
    seen = 0
    stack: list[tuple[tuple[bytes, ...], int]] = [((), os.dup(root_fd))]
    try:
        while stack:
            parts, fd = stack.pop()
            try:
                # listdir on an fd: names of this very directory, whatever its path became
                names = sorted(os.fsencode(n) for n in os.listdir(fd))  # noqa: PTH208
                for raw in names:
                    seen += 1
                    if seen > max_entries:
                        raise ProtocolError(f"the volume holds more than {max_entries} "
                                            "entries: refused as a whole")
                    try:
                        st = os.stat(raw, dir_fd=fd, follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # gone between listing and stat
                    if not stat.S_ISDIR(st.st_mode):
                        yield Entry((*parts, raw), st)
                    elif len(parts) >= max_depth:
                        yield Entry((*parts, raw), st, f"a folder deeper than max_depth "
                                    f"({max_depth}): not read")
                    else:
                        try:
                            child = os.open(raw, O_DIR, dir_fd=fd)
                        except OSError as exc:
                            yield Entry((*parts, raw), st, f"a folder that cannot be read: "
                                        f"{exc.strerror}")
                            continue
                        stack.append(((*parts, raw), child))
            except OSError as exc:
                raise device_error(exc, "listing the volume") from exc
            finally:
                os.close(fd)
    finally:
        for _, fd in stack:
            os.close(fd)


def open_parent(root_fd: int, parts: Sequence[bytes]) -> int:
    """A new fd of the directory holding `parts[-1]`, resolved beneath root_fd."""
    fd = os.dup(root_fd)
    try:
        for part in parts[:-1]:
            nxt = os.open(part, O_DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError:
        os.close(fd)
        raise
    return fd


def same_file(now: os.stat_result, listed: os.stat_result) -> bool:
    """The same inode, unchanged: device, inode, size, mtime — and ctime, which no one can
    set back (a rewrite in place that restores the mtime still moves it). A changed link
    count explains a changed ctime: a file renamed away or unlinked while read still holds
    the bytes it was listed with, and keeping those is what nothing-lost asks."""
    if (now.st_dev, now.st_ino, now.st_size, now.st_mtime_ns) != (
            listed.st_dev, listed.st_ino, listed.st_size, listed.st_mtime_ns):
        return False
    return now.st_ctime_ns == listed.st_ctime_ns or now.st_nlink != listed.st_nlink
