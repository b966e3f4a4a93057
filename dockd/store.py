"""The evidence store on disk: layout, name sanitising, atomic no-overwrite saves.

Layout: <root>/<serial>/<YYYY>/<MM>/<DD>/<camera name>.age (date = recording start, UTC).
Directories are 0700 and files 0600. A file is written by one owner (docs/storage.md,
"Custody") as `.<name>.<token>.partial` in its final directory (O_CREAT|O_EXCL), fsynced, then
moved to its final name *without replacing* anything (renameat2 RENAME_NOREPLACE, or
link+unlink where that is unavailable), and the directory is fsynced. Final names never start
with '.', so partials, their resume sidecars (`….partial.resume`), the anchor file
(`.audit-anchors`) and the quarantine (`.quarantine/`) can never be mistaken for evidence.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
import re
import stat
import threading
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

from dockd.errors import StorageError, StoreExists, StoreFull

SUFFIX = ".age"
PARTIAL_SUFFIX = ".partial"
SIDECAR_SUFFIX = ".partial.resume"
#: files found where they did not belong, moved aside (never adopted, never overwritten)
QUARANTINE_DIR = ".quarantine"
#: says whether the store holds simulated or real evidence (daemon.guard_evidence_mode)
STORE_MARKER = ".dockd-store"
#: longest sanitised component; leaves room for '.', suffixes and a '-NNN' collision counter
MAX_COMPONENT = 120
DIR_MODE = 0o700
FILE_MODE = 0o600
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_RENAME_NOREPLACE = 1
_AT_FDCWD = -100


def sanitise(text: str, *, max_len: int = MAX_COMPONENT) -> str:
    """A safe single path component: [A-Za-z0-9._-] only, no leading dot, length-capped.

    Names that cannot mean anything (empty, '.', '..') are refused. A capped name keeps a
    short hash of the original so two long names that share a prefix stay distinct.
    """
    if text in {"", ".", ".."}:
        raise StorageError(f"refusing unusable name {text!r}")
    safe = _UNSAFE.sub("_", text)
    if safe.startswith("."):  # reserved for partials; also hides nothing from `ls`
        safe = "_" + safe[1:]
    if len(safe) > max_len:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = safe[: max_len - 9] + "-" + digest
    return safe


def recording_dir(root: Path, serial: str, started: datetime) -> Path:
    day = started.astimezone(UTC) if started.tzinfo else started
    return root / sanitise(serial) / f"{day.year:04d}" / f"{day.month:02d}" / f"{day.day:02d}"


def final_path(root: Path, serial: str, started: datetime, name: str, rec_id: int, *,
               shared: bool) -> Path:
    """`<serial>/<YYYY>/<MM>/<DD>/<name>.age`. A camera name that needed sanitising, or
    that another recording of the camera shares (`shared`), gets `~r<id>` before `.age` — a
    character sanitised names never contain, so the two kinds can never collide."""
    directory = recording_dir(root, serial, started)
    safe = sanitise(name)
    if safe == name and not shared:
        return directory / f"{safe}{SUFFIX}"
    return directory / f"{sanitise(name, max_len=100)}~r{rec_id}{SUFFIX}"


def storage_error(exc: OSError, path: Path, doing: str) -> StorageError:
    """Map an OSError to a typed error: ENOSPC/EDQUOT become StoreFull."""
    cls = StoreFull if exc.errno in _FULL_ERRNOS else StorageError
    return cls(f"{path}: {doing}: {os.strerror(exc.errno or 0) or exc}")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def nearest_existing(path: Path) -> Path:
    """`path`, or its closest ancestor that exists (what a directory about to be made is on)."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def ensure_dir(path: Path) -> None:
    """Create path and missing parents as 0700 directories, durably; refuse symlinks."""
    missing: list[Path] = []
    probe = path
    while True:
        try:
            st = os.lstat(probe)
        except FileNotFoundError:
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
            continue
        except OSError as exc:
            raise storage_error(exc, probe, "checking directory") from exc
        if not stat.S_ISDIR(st.st_mode):
            raise StorageError(f"{probe}: exists and is not a directory (or is a symlink)")
        break
    for directory in reversed(missing):
        try:
            directory.mkdir(DIR_MODE)
            directory.chmod(DIR_MODE)  # umask can only narrow; be explicit anyway
            fsync_dir(directory.parent)
        except FileExistsError:
            if not directory.is_dir() or directory.is_symlink():
                raise StorageError(f"{directory}: exists and is not a directory") from None
        except OSError as exc:
            raise storage_error(exc, directory, "creating directory") from exc


def partial_path(final: Path, owner: str) -> Path:
    """The partial one writer (`owner`: its lease token) writes for `final`. Partials are
    named per writer, so no two writers ever share one, even by mistake."""
    if not owner or not owner.isalnum():
        raise StorageError(f"unusable partial owner {owner!r}")
    return final.with_name(f".{final.name}.{owner}{PARTIAL_SUFFIX}")


def partials_for(final: Path) -> list[Path]:
    """Every writer's partial for `final` (what a new lease holder may take over)."""
    prefix = f".{final.name}."
    try:
        names = [p.name for p in final.parent.iterdir()]
    except OSError:
        return []
    found = []
    for name in names:
        if name.startswith(prefix) and name.endswith(PARTIAL_SUFFIX):
            owner = name[len(prefix):-len(PARTIAL_SUFFIX)]
            if owner.isalnum():
                found.append(final.parent / name)
    return sorted(found)


def final_name_of(partial: Path) -> str | None:
    """The final file name a partial is for (`.<final>.<owner>.partial` → `<final>`)."""
    name = partial.name
    if not (name.startswith(".") and name.endswith(PARTIAL_SUFFIX)):
        return None
    stem = name[1:-len(PARTIAL_SUFFIX)]
    final, _, owner = stem.rpartition(".")
    return final if final and owner.isalnum() else None


def take_over(old: Path, new: Path) -> None:
    """Move a dead writer's partial and its resume state to the new writer's names (the
    caller holds the recording's lease, so nobody else writes them)."""
    old.rename(new)
    if os.path.lexists(sidecar_path(old)):
        sidecar_path(old).rename(sidecar_path(new))
    fsync_dir(new.parent)


def sidecar_path(partial: Path) -> Path:
    return partial.with_name(partial.name + ".resume")


def create_partial(path: Path) -> int:
    """Open a new partial for writing (never an existing one); return the fd."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
    try:
        fd = os.open(path, flags, FILE_MODE)
        os.fchmod(fd, FILE_MODE)
    except FileExistsError as exc:
        raise StoreExists(f"{path}: partial already exists") from exc
    except OSError as exc:
        raise storage_error(exc, path, "creating partial") from exc
    return fd


def _renameat2_noreplace() -> Callable[..., int] | None:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    func = getattr(libc, "renameat2", None)
    if func is None:
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    return func  # type: ignore[no-any-return]


_RENAMEAT2 = _renameat2_noreplace()


def _move_noreplace(src: Path, dst: Path) -> None:
    if _RENAMEAT2 is not None:
        rc = _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err not in {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP}:
            raise OSError(err, os.strerror(err), str(dst))
    # fallback: link fails with EEXIST instead of replacing; then drop the partial's name
    os.link(src, dst)
    src.unlink()


def publish(partial: Path, final: Path) -> None:
    """Give a durable (already fsynced) partial its final name, never replacing a file."""
    if partial.parent != final.parent:
        raise StorageError(f"{final}: partial must be in the same directory")
    try:
        _move_noreplace(partial, final)
    except FileExistsError as exc:
        raise StoreExists(f"{final}: already exists; the store never overwrites") from exc
    except OSError as exc:  # (EEXIST always arrives as FileExistsError, above)
        raise storage_error(exc, final, "publishing") from exc
    try:
        fsync_dir(final.parent)
    except OSError as exc:
        raise storage_error(exc, final.parent, "syncing directory") from exc


def sha256_file(path: Path, piece: int = 4 << 20,
                beat: Callable[[], None] | None = None) -> str:
    """The SHA-256 (hex) of a stored file, read in bounded pieces; `beat` after each piece
    (a hash of gigabytes must not look like a hung worker to the watchdog)."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(piece):
            digest.update(chunk)
            if beat is not None:
                beat()
    return digest.hexdigest()


def quarantine(root: Path, path: Path, when: datetime) -> Path:
    """Move a file found where it did not belong into `<root>/.quarantine/`, never replacing
    anything there, and return its new path. Nothing is deleted: a person decides."""
    qdir = root / QUARANTINE_DIR
    ensure_dir(qdir)
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    base = f"{when.astimezone(UTC):%Y%m%dT%H%M%SZ}_" + sanitise("_".join(rel.parts), max_len=180)
    for n in range(1000):
        target = qdir / (base if n == 0 else f"{base}.{n}")
        try:
            _move_noreplace(path, target)
        except FileExistsError:
            continue
        except OSError as exc:
            raise storage_error(exc, path, f"moving into {qdir}") from exc
        try:
            fsync_dir(qdir)
            fsync_dir(path.parent)
        except OSError as exc:
            raise storage_error(exc, qdir, "syncing quarantine") from exc
        return target
    raise StorageError(f"{qdir}: no free name for {path.name}")


def write_atomic(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data`, all or nothing: a temp file beside it (named for this
    process and thread, so writers never share one) → fsync → rename over → fsync the
    directory. The temp file is removed again on failure. Raises OSError."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC,
                     mode)
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        tmp.replace(path)
    except OSError:
        remove_quietly(tmp)
        raise
    fsync_dir(path.parent)


def remove_quietly(path: Path) -> None:
    """Unlink if present; used on cleanup paths where the original error matters more."""
    try:
        path.unlink(missing_ok=True)
    except OSError:
        return


def _is_leftover(name: str) -> bool:
    return name.startswith(".") and (
        name.endswith(PARTIAL_SUFFIX) or name.endswith(SIDECAR_SUFFIX) or name.endswith(".tmp")
    )


def list_partials(root: Path) -> list[Path]:
    """Every partial, resume sidecar and sidecar temp file under root, sorted."""
    found: list[Path] = []
    if not root.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        found.extend(Path(dirpath) / name for name in filenames if _is_leftover(name))
    return sorted(found)


def clean_partials(root: Path, keep: Collection[Path] = (),
                   found: Collection[Path] | None = None) -> list[Path]:
    """Remove leftovers of interrupted writes, except partials in `keep` (to be resumed)
    and their sidecars. `found` is `list_partials(root)` when the caller already has it.
    Returns what was removed."""
    kept = {Path(p) for p in keep}
    kept |= {sidecar_path(p) for p in kept}
    removed: list[Path] = []
    for path in sorted(found) if found is not None else list_partials(root):
        if path in kept:
            continue
        remove_quietly(path)
        removed.append(path)
    for directory in {p.parent for p in removed}:
        try:
            fsync_dir(directory)
        except OSError:
            continue
    return removed
