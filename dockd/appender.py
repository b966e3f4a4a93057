"""Writing ciphertext to a partial from a writer thread, whole 4 KiB blocks with O_DIRECT.

No copy into the page cache: that was the costliest and noisiest step of the reading thread
here (docs/storage.md). The write itself runs on one writer thread (pwrite releases the GIL),
so the next batch is read and sealed while this one goes to disk; positions are explicit, so
order does not matter, and the caller keeps a batch's buffer untouched until its write future
is done. The unaligned tail waits in `carry` and is written in front of the next batch. Where
the filesystem refuses O_DIRECT (EINVAL), writes fall back to buffered ones.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

#: O_DIRECT alignment of buffers, lengths and file offsets (the common logical block size)
ALIGN = 4096


def aligned_buffer(size: int) -> tuple[bytearray, memoryview]:
    """A bytearray and a view of `size` bytes of it starting on an ALIGN boundary."""
    raw = bytearray(size + ALIGN)
    skip = -ctypes.addressof(ctypes.c_char.from_buffer(raw)) % ALIGN
    return raw, memoryview(raw)[skip : skip + size]


class Appender:
    """Appends ciphertext to the partial at `pos`, from a writer thread (module docstring)."""

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
