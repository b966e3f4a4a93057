"""Parts of a file for a multipart upload: their SHA-256s, and a bounded reader for each.

S3's checksum of a multipart object is COMPOSITE: SHA-256 over the concatenated binary
SHA-256s of the parts, reported base64 with a `-<parts>` suffix. `composite_b64` computes
it from the parts so the client can compare it with what the server says it stored.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

#: read size for hashing and for each read botocore asks of a part
PIECE = 1 << 20


def b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def composite_b64(part_digests: list[bytes]) -> str:
    """S3's COMPOSITE SHA-256 of a multipart object (without the `-N` suffix)."""
    return base64.b64encode(hashlib.sha256(b"".join(part_digests)).digest()).decode("ascii")


def split_checksum(value: str) -> tuple[str, int | None]:
    """`"<b64>-3"` → ("<b64>", 3); a whole-object checksum → (value, None)."""
    head, dash, tail = value.rpartition("-")
    if dash and tail.isdigit():
        return head, int(tail)
    return value, None


@dataclass(frozen=True)
class PartPlan:
    """Where each part lies in the file and what it must hash to."""

    size: int
    part_size: int
    #: SHA-256 (hex) of the whole file, computed in the same pass as the parts
    sha256: str
    digests: tuple[bytes, ...]

    @property
    def count(self) -> int:
        return len(self.digests)

    def bounds(self, number: int) -> tuple[int, int]:
        """(offset, length) of part `number` (1-based, as S3 counts)."""
        offset = (number - 1) * self.part_size
        return offset, min(self.part_size, self.size - offset)

    def b64(self, number: int) -> str:
        return base64.b64encode(self.digests[number - 1]).decode("ascii")

    def composite(self) -> str:
        return composite_b64(list(self.digests))


def plan_parts(path: Path, part_size: int) -> PartPlan:
    """Hash `path` once, in bounded pieces, into per-part SHA-256s and the whole-file one."""
    whole = hashlib.sha256()
    digests: list[bytes] = []
    size = 0
    with path.open("rb") as f:
        while True:
            part = hashlib.sha256()
            left = part_size
            while left:
                chunk = f.read(min(PIECE, left))
                if not chunk:
                    break
                part.update(chunk)
                whole.update(chunk)
                left -= len(chunk)
            got = part_size - left
            if got == 0 and digests:
                break
            digests.append(part.digest())
            size += got
            if left:
                break
    return PartPlan(size=size, part_size=part_size, sha256=whole.hexdigest(),
                    digests=tuple(digests))


class FileSlice(io.RawIOBase):
    """A read-only, seekable view of `length` bytes at `offset` of an open file.

    Positions are relative to the slice, so botocore's rewind (`seek(0)`) for a retry or
    for hashing the payload goes back to the part's start. Reads use pread: slices of one
    file never share a position. Memory stays bounded by what the caller asks for."""

    def __init__(self, fd: int, offset: int, length: int) -> None:
        super().__init__()
        self._fd = fd
        self._offset = offset
        self._length = length
        self._pos = 0

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._length}[whence]
        self._pos = max(0, min(self._length, base + offset))
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Up to `size` bytes (the rest of the part for -1), in one pread."""
        left = self._length - self._pos
        want = left if size is None or size < 0 else min(size, left)
        if want <= 0:
            return b""
        data = os.pread(self._fd, want, self._offset + self._pos)
        if not data:
            raise OSError(f"file shrank while uploading (expected {self._length} bytes "
                          f"at offset {self._offset})")
        self._pos += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)
