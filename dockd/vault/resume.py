"""What a multipart upload has done so far, kept on disk so it survives a restart.

One JSON file per bucket/key in `resume_dir` (mode 0600), replaced atomically after each
part the server confirmed. It is a hint, not a truth: before continuing, the client checks
every part it names against the server's list_parts, and a file whose size or hash changed
since makes the whole upload start over.

A second writer for the same key is refused by an flock on a sibling `.lock` file
(one owner per upload; the other waits or is told so, it never "cleans up" a live upload).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from dockd.errors import LeaseHeld
from dockd.store import remove_quietly, write_atomic

FORMAT = 1
_MODE = 0o600
#: the vault service's resume_dir inside the evidence store (a dot-name: never evidence;
#: `dockctl verify` does not count its states and locks as unknown files)
RESUME_DIR_NAME = ".vault-uploads"


@dataclass
class UploadState:
    bucket: str
    object_key: str
    upload_id: str
    size: int
    #: the file's SHA-256 (hex) the catalog recorded; the upload is of exactly these bytes
    sha256: str
    part_size: int
    #: base64 SHA-256 of every part, in order
    part_sha256: list[str]
    #: part number → ETag of the parts the server confirmed
    etags: dict[int, str] = field(default_factory=dict)
    #: set just before CompleteMultipartUpload: a lost answer may mean it did complete
    completing: bool = False
    format: int = FORMAT


def state_path(resume_dir: Path, bucket: str, object_key: str) -> Path:
    # keys hold '/' and anything else S3 allows: name the file by a hash of them
    name = hashlib.sha256(f"{bucket}\0{object_key}".encode()).hexdigest()[:40]
    return resume_dir / f"{name}.json"


def load_state(path: Path) -> UploadState | None:
    """The saved state, or None when there is none or it is unreadable (start over)."""
    try:
        doc = json.loads(path.read_bytes())
        if doc.get("format") != FORMAT:
            return None
        doc["etags"] = {int(k): str(v) for k, v in doc["etags"].items()}
        return UploadState(**doc)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def save_state(path: Path, state: UploadState) -> None:
    write_atomic(path, json.dumps(asdict(state), sort_keys=True).encode(), mode=_MODE)


def drop_state(path: Path) -> None:
    remove_quietly(path)


@contextmanager
def exclusive(resume_dir: Path, state: Path) -> Iterator[None]:
    """Hold the key's upload lock for the duration, or raise LeaseHeld at once."""
    resume_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = state.with_suffix(".lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, _MODE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LeaseHeld(f"{lock}: another upload of this key is running in this "
                            "machine; it is left alone") from None
        yield
    finally:
        os.close(fd)
