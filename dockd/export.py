"""Hand recordings over: decrypt, prove the plaintext hash, write files that are never
overwritten (0600) plus a manifest with each recording's custody trail, and audit it.

Never prints; `dockctl export` renders the result. Streams: memory does not grow with size.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dockd.catalog import Catalog, EventKind, RecordingRow
from dockd.crypto.keys import X25519Identity
from dockd.crypto.stream import AgeReader
from dockd.errors import CryptoError, NoIdentityMatched, StorageError, VerifyFailed
from dockd.store import fsync_dir, sanitise
from dockd.verify import chain_json, event_json, iter_events, resolve_store_path

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "dockd-export/1"


@dataclass(frozen=True)
class ExportedFile:
    recording: RecordingRow
    path: Path
    plaintext_sha256: str
    size: int


@dataclass(frozen=True)
class ExportResult:
    files: list[ExportedFile]
    manifest: Path


def export_name(rec: RecordingRow) -> str:
    """Camera names are device bytes: sanitised, and prefixed so two cameras never collide."""
    return f"{rec.id}_{sanitise(rec.camera_serial, max_len=64)}_{sanitise(rec.camera_name)}"


def _create_excl(path: Path) -> int:
    try:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise StorageError(f"{path} already exists: export never overwrites a file") from None
    except OSError as exc:
        raise StorageError(f"cannot create {path}: {exc.strerror}") from exc


def _decrypt_into(rec: RecordingRow, identities: Sequence[X25519Identity], fd: int, dest: Path,
                  identity_source: str) -> tuple[str, int]:
    """Decrypt rec's stored file into fd (dest, just created); return (plaintext sha256, size)."""
    assert rec.store_path is not None
    src_path = resolve_store_path(rec.store_path)
    label = f"recording {rec.id} ({rec.camera_name})"
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(fd, "wb") as out, src_path.open("rb") as src:
            try:
                for piece in AgeReader(src, identities):
                    out.write(piece)
                    digest.update(piece)
                    size += len(piece)
            except NoIdentityMatched:
                raise NoIdentityMatched(
                    f"{label}: {identity_source} cannot decrypt {src_path} (wrong identity?)"
                ) from None
            except CryptoError as exc:
                raise type(exc)(f"{label}: {src_path} does not decrypt: {exc}") from exc
            out.flush()
            os.fsync(out.fileno())
    except OSError as exc:
        raise StorageError(f"{label}: cannot export {src_path} to {dest}: {exc}") from exc
    return digest.hexdigest(), size


def _check(rec: RecordingRow, plain: str, size: int) -> None:
    expected = {rec.camera_sha256, rec.plaintext_sha256 or rec.camera_sha256}
    if expected != {plain} or size != rec.size:
        raise VerifyFailed(
            f"recording {rec.id} ({rec.camera_name}): decrypted {size} bytes with SHA-256 "
            f"{plain}; the catalogue says {rec.size} bytes, SHA-256 {rec.camera_sha256}"
        )


def recording_json(rec: RecordingRow) -> dict[str, Any]:
    return {
        "id": rec.id, "camera_serial": rec.camera_serial, "camera_name": rec.camera_name,
        "size": rec.size, "started": rec.started.isoformat(), "duration_s": rec.duration_s,
        "prerecord_s": rec.prerecord_s, "status": str(rec.status),
        "camera_sha256": rec.camera_sha256, "plaintext_sha256": rec.plaintext_sha256,
        "stored_sha256": rec.stored_sha256, "store_path": rec.store_path,
    }


def export_recordings(catalog: Catalog, ids: Sequence[int],
                      identities: Sequence[X25519Identity], out_dir: Path, *,
                      identity_source: str = "the identity") -> ExportResult:
    """Export the recordings `ids` into out_dir. All or nothing: on any failure the files this
    call wrote are removed again and the error (typed) propagates."""
    recs = [catalog.recording(i) for i in dict.fromkeys(ids)]  # unknown id: CatalogError
    for rec in recs:
        if rec.store_path is None:
            raise StorageError(f"recording {rec.id} ({rec.camera_name}) is {rec.status}: "
                               "there is no stored file to export")
    try:
        out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise StorageError(f"cannot create {out_dir}: {exc.strerror}") from exc
    manifest = out_dir / MANIFEST_NAME
    targets = [out_dir / export_name(r) for r in recs]
    for path in [*targets, manifest]:  # fail before any work, not after hours of decrypting
        if path.exists() or path.is_symlink():
            raise StorageError(f"{path} already exists: export never overwrites a file")
    written: list[Path] = []
    files: list[ExportedFile] = []
    try:
        for rec, dest in zip(recs, targets, strict=True):
            fd = _create_excl(dest)
            written.append(dest)  # only what this call created is ever removed again
            plain, size = _decrypt_into(rec, identities, fd, dest, identity_source)
            _check(rec, plain, size)
            files.append(ExportedFile(rec, dest, plain, size))
        _write_manifest(manifest, catalog, files, written)
        try:
            fsync_dir(out_dir)
        except OSError as exc:
            raise StorageError(f"cannot sync {out_dir}: {exc.strerror}") from exc
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return ExportResult(files, manifest)


def _write_manifest(path: Path, catalog: Catalog, files: list[ExportedFile],
                    written: list[Path]) -> None:
    now = datetime.now(UTC)
    fd = _create_excl(path)
    written.append(path)
    for f in files:  # first the audit events, so the manifest's trail includes them
        catalog.record_event(
            EventKind.EXPORTED, camera_serial=f.recording.camera_serial,
            recording_id=f.recording.id,
            details={"file": str(f.path), "plaintext_sha256": f.plaintext_sha256,
                     "size": f.size},
        )
    doc = {
        "format": MANIFEST_FORMAT,
        "exported_at": now.isoformat(),
        "host": socket.gethostname(),
        "audit_chain": chain_json(catalog.verify_chain()),
        "recordings": [
            {**recording_json(f.recording), "file": f.path.name,
             "exported_sha256": f.plaintext_sha256,
             "custody": [event_json(e) for e in iter_events(catalog, recording=f.recording.id)]}
            for f in files
        ],
    }
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(doc, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())
