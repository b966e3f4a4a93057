"""The age v1 payload (STREAM): 64 KiB chunks sealed with ChaCha20-Poly1305.

Nonce of chunk i = 11-byte big-endian i || 0x01 on the final chunk, else 0x00. The final
chunk may be full but is empty only when the whole plaintext is empty, so a writer that does
not know the size holds the last chunk back until more data (or the end) arrives.

Resume: a stream is fully described by (file key, payload nonce, number of complete
non-final chunks already written); `PayloadSealer` continues at chunk N. The daemon resumes
through dockd/pipeline.py (`load_resume`); `AgeWriter` is the simple whole-file writer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from dockd.crypto.encoding import hkdf_sha256
from dockd.crypto.header import Header, build_header, parse_header, unwrap_file_key
from dockd.crypto.keys import FILE_KEY_SIZE, X25519Identity, X25519Recipient, new_file_key
from dockd.errors import AgeFormatError, AuthenticationFailed, CryptoError, TruncatedFile

CHUNK = 64 * 1024
TAG = 16
SEALED = CHUNK + TAG
NONCE_SIZE = 16
#: chunks per encrypt/decrypt batch: 1 MiB, the size where per-call costs stop mattering
DEFAULT_BATCH = 16
_MAX_COUNTER = (1 << 88) - 1


def payload_key(file_key: bytes, payload_nonce: bytes) -> bytes:
    if len(file_key) != FILE_KEY_SIZE or len(payload_nonce) != NONCE_SIZE:
        raise CryptoError("file key must be 16 bytes and payload nonce 16 bytes")
    return hkdf_sha256(file_key, payload_nonce, b"payload")


def sealed_size(plaintext_size: int) -> int:
    """Payload length (without header and nonce) for a plaintext of this size."""
    chunks = max(1, -(-plaintext_size // CHUNK))
    return plaintext_size + chunks * TAG


def _nonce(counter: int, final: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise CryptoError("age payload chunk counter overflow")
    return counter.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


class PayloadSealer:
    """Seals consecutive chunks starting at `counter`. No buffering: callers pass batches."""

    def __init__(self, key: bytes, counter: int = 0) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.counter = counter

    def seal(self, src: memoryview, dst: memoryview, *, final: bool) -> int:
        """Seal src into dst; return bytes written.

        src is whole chunks; if final, its last chunk may be short (or src empty, only for an
        empty plaintext) and carries the final flag. dst needs `sealed_size`-many bytes.
        """
        n = len(src)
        if not final and n % CHUNK:
            raise CryptoError("non-final batches must be whole 64 KiB chunks")
        starts = range(0, n, CHUNK) if n else range(1) if final else range(0)
        last = starts[-1] if len(starts) else -1
        out = 0
        for start in starts:
            piece = src[start : start + CHUNK]
            is_final = final and start == last
            written = self._aead.encrypt_into(
                _nonce(self.counter, is_final), piece, None, dst[out : out + len(piece) + TAG]
            )
            out += written
            self.counter += 1
        return out


class PayloadOpener:
    """Opens consecutive sealed chunks starting at `counter`."""

    def __init__(self, key: bytes, counter: int = 0) -> None:
        self._aead = ChaCha20Poly1305(key)
        self.counter = counter

    def open(self, src: memoryview, dst: memoryview, *, final: bool) -> int:
        """Open src (whole sealed chunks; if final, the last may be short) into dst."""
        n = len(src)
        out = 0
        pos = 0
        while pos < n:
            piece = src[pos : pos + SEALED]
            is_final = final and pos + len(piece) == n
            if len(piece) < TAG or (len(piece) < SEALED and not is_final):
                raise TruncatedFile("age payload ends inside a chunk")
            if is_final and len(piece) == TAG and self.counter > 0:
                raise AgeFormatError("age payload has an empty final chunk after data")
            try:
                written = self._aead.decrypt_into(
                    _nonce(self.counter, is_final), piece, None, dst[out : out + len(piece) - TAG]
                )
            except InvalidTag:
                raise self._diagnose(piece, is_final) from None
            out += written
            pos += len(piece)
            self.counter += 1
        return out

    def _diagnose(self, piece: memoryview, was_final: bool) -> CryptoError:
        """Tell truncation/trailing data apart from tampering by trying the other flag."""
        try:
            self._aead.decrypt(_nonce(self.counter, not was_final), piece, None)
        except InvalidTag:
            return AuthenticationFailed(f"age payload chunk {self.counter} fails authentication")
        if was_final:
            return TruncatedFile("age file is truncated: its last chunk is not the final one")
        return TruncatedFile("age file has data after its final chunk")


class AgeWriter:
    """Streaming age encryptor with bounded memory (one held-back chunk + one batch buffer)."""

    def __init__(
        self,
        sink: BinaryIO,
        file_key: bytes,
        payload_nonce: bytes,
        *,
        chunks_done: int = 0,
        batch_chunks: int = DEFAULT_BATCH,
    ) -> None:
        self.sink = sink
        self.file_key = file_key
        self.payload_nonce = payload_nonce
        self._sealer = PayloadSealer(payload_key(file_key, payload_nonce), chunks_done)
        self._batch = max(1, batch_chunks)
        self._out = bytearray(self._batch * SEALED)
        self._pending = bytearray(CHUNK)
        self._pending_len = 0
        self._finished = False
        #: bytes of header + nonce written by create() (0 for a resumed writer)
        self.header_length = 0

    @classmethod
    def create(
        cls,
        sink: BinaryIO,
        recipients: Sequence[X25519Recipient],
        *,
        file_key: bytes | None = None,
        batch_chunks: int = DEFAULT_BATCH,
    ) -> AgeWriter:
        """Write header and payload nonce to sink and return a writer for the payload."""
        key = file_key if file_key is not None else new_file_key()
        nonce = os.urandom(NONCE_SIZE)
        prefix = build_header(recipients, key) + nonce
        sink.write(prefix)
        writer = cls(sink, key, nonce, batch_chunks=batch_chunks)
        writer.header_length = len(prefix)
        return writer

    @classmethod
    def resume(
        cls,
        sink: BinaryIO,
        file_key: bytes,
        payload_nonce: bytes,
        chunks_done: int,
        *,
        batch_chunks: int = DEFAULT_BATCH,
    ) -> AgeWriter:
        """Continue a stream whose first chunks_done chunks are written; sink is after them."""
        return cls(
            sink, file_key, payload_nonce, chunks_done=chunks_done, batch_chunks=batch_chunks
        )

    @property
    def chunks_sealed(self) -> int:
        """Complete non-final chunks handed to the sink: what a checkpoint may record."""
        return self._sealer.counter

    def _emit(self, src: memoryview, final: bool) -> None:
        n = self._sealer.seal(src, memoryview(self._out), final=final)
        self.sink.write(memoryview(self._out)[:n])

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._finished:
            raise CryptoError("write after finish")
        view = memoryview(data).cast("B")
        total = len(view)
        if total == 0:
            return 0
        pos = 0
        if self._pending_len:
            take = min(CHUNK - self._pending_len, total)
            self._pending[self._pending_len : self._pending_len + take] = view[:take]
            self._pending_len += take
            pos = take
            if pos == total:  # cannot know yet whether the held chunk is the last one
                return total
            self._emit(memoryview(self._pending), final=False)
            self._pending_len = 0
        # seal every chunk that is certainly followed by more data; hold back the rest
        sealable = (total - pos - 1) // CHUNK * CHUNK
        step = self._batch * CHUNK
        end = pos + sealable
        while pos < end:
            stop = min(pos + step, end)
            self._emit(view[pos:stop], final=False)
            pos = stop
        rest = total - pos
        self._pending[:rest] = view[pos:]
        self._pending_len = rest
        return total

    def finish(self) -> None:
        """Seal the final chunk. The sink is not closed or synced: the caller owns it."""
        if self._finished:
            return
        if self._pending_len == 0 and self._sealer.counter > 0:
            raise CryptoError("stream ended on a chunk boundary after resume: no final chunk")
        self._emit(memoryview(self._pending)[: self._pending_len], final=True)
        self._finished = True


class AgeReader:
    """Streaming age decryptor: checks the header MAC, every chunk tag, and truncation."""

    def __init__(
        self,
        source: BinaryIO,
        identities: Sequence[X25519Identity],
        *,
        batch_chunks: int = DEFAULT_BATCH,
    ) -> None:
        self.source = source
        self.header: Header = parse_header(source)
        self.file_key = unwrap_file_key(self.header, identities)
        nonce = source.read(NONCE_SIZE)
        if len(nonce) != NONCE_SIZE:
            raise TruncatedFile("age file ends before the payload nonce")
        self.payload_nonce = nonce
        self._opener = PayloadOpener(payload_key(self.file_key, nonce))
        self._batch = max(1, batch_chunks)

    def chunks(self) -> Iterator[memoryview]:
        """Yield plaintext batches. Each view is valid only until the next one is requested."""
        span = self._batch * SEALED
        inbuf = bytearray(span + 1)  # +1: a look-ahead byte tells whether more chunks follow
        outbuf = bytearray(self._batch * CHUNK)
        inview, outview = memoryview(inbuf), memoryview(outbuf)
        have = 0
        while True:
            eof = False
            while have < span + 1:
                got = self.source.readinto(inview[have:])  # type: ignore[attr-defined]
                if not got:
                    eof = True
                    break
                have += got
            if not eof:
                n = self._opener.open(inview[:span], outview, final=False)
                inbuf[0] = inbuf[span]
                have = 1
                yield outview[:n]
                continue
            if have == 0 and self._opener.counter == 0:
                raise TruncatedFile("age file has no payload chunks")
            n = self._opener.open(inview[:have], outview, final=True)
            yield outview[:n]
            return

    def __iter__(self) -> Iterator[memoryview]:
        return self.chunks()


def decrypt_file(path: Path, identities: Sequence[X25519Identity]) -> Iterator[bytes]:
    """Yield the plaintext of an age file in ~1 MiB pieces; raises CryptoError subclasses."""
    with path.open("rb") as source:
        for piece in AgeReader(source, identities):
            yield bytes(piece)


def decrypt_to(path: Path, identities: Sequence[X25519Identity], dest: BinaryIO) -> int:
    """Decrypt an age file into dest; return plaintext bytes. dest may hold a prefix on error."""
    total = 0
    with path.open("rb") as source:
        for piece in AgeReader(source, identities):
            dest.write(piece)
            total += len(piece)
    return total
