"""The age v1 text header: version line, recipient stanzas, MAC.

Parsing treats the file as hostile: every line and the whole header are length-capped,
stanza arguments must be printable ASCII, base64 must be canonical.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from dockd.crypto.encoding import b64decode, b64encode, hkdf_sha256
from dockd.crypto.keys import FILE_KEY_SIZE, Stanza, X25519Identity, X25519Recipient
from dockd.errors import AgeFormatError, AuthenticationFailed, NoIdentityMatched

VERSION_LINE = b"age-encryption.org/v1\n"
_MAX_LINE = 8192
_MAX_HEADER = 1 << 20
_MAX_STANZAS = 1024
_COLUMNS = 64


@dataclass(frozen=True)
class Header:
    stanzas: tuple[Stanza, ...]
    mac: bytes
    #: the bytes the MAC covers: everything up to and including '---'
    mac_input: bytes
    #: total length of the header including the MAC line's newline
    length: int


def header_mac(file_key: bytes, mac_input: bytes) -> bytes:
    """HMAC-SHA-256 over the header up to '---', keyed by HKDF(file key, info "header")."""
    key = hkdf_sha256(file_key, b"", b"header")
    return hmac.new(key, mac_input, hashlib.sha256).digest()


def _encode_stanza(stanza: Stanza) -> bytes:
    lines = ["-> " + " ".join((stanza.type, *stanza.args))]
    body = b64encode(stanza.body)
    # full 64-column lines, then a final shorter (possibly empty) line
    lines += [body[i : i + _COLUMNS] for i in range(0, len(body) - len(body) % _COLUMNS, _COLUMNS)]
    lines.append(body[len(body) - len(body) % _COLUMNS :])
    return ("\n".join(lines) + "\n").encode("ascii")


def build_header(recipients: Sequence[X25519Recipient], file_key: bytes) -> bytes:
    """The full header (ending with the MAC line's newline) wrapping file_key to recipients."""
    if not recipients:
        raise AgeFormatError("at least one recipient is required")
    if len(file_key) != FILE_KEY_SIZE:
        raise AgeFormatError("file key must be 16 bytes")
    mac_input = VERSION_LINE + b"".join(_encode_stanza(r.wrap(file_key)) for r in recipients)
    mac_input += b"---"
    return mac_input + b" " + b64encode(header_mac(file_key, mac_input)).encode() + b"\n"


def _readline(source: BinaryIO, total: int) -> bytes:
    line = source.readline(_MAX_LINE + 1)
    if not line:
        raise AgeFormatError("file ends inside the age header")
    if len(line) > _MAX_LINE or not line.endswith(b"\n"):
        raise AgeFormatError("age header line is too long or unterminated")
    if total + len(line) > _MAX_HEADER:
        raise AgeFormatError("age header is implausibly large")
    return line


def _printable(word: bytes) -> str:
    if not word or any(b < 0x21 or b > 0x7E for b in word):
        raise AgeFormatError("age stanza has an empty or non-printable argument")
    return word.decode("ascii")


def parse_header(source: BinaryIO) -> Header:
    """Read and parse the header from the start of source; leaves source at the payload."""
    first = source.readline(len(VERSION_LINE))
    if first != VERSION_LINE:
        if first.startswith(b"-----BEGIN AGE"):
            raise AgeFormatError("ASCII-armored age files are not supported")
        raise AgeFormatError("not an age v1 file (bad version line)")
    raw = bytearray(first)
    stanzas: list[Stanza] = []
    while True:
        line = _readline(source, len(raw))
        if line.startswith(b"--- "):
            mac_text = line[4:-1]
            raw += b"---"
            mac = b64decode(_printable(mac_text))
            if len(mac) != 32:
                raise AgeFormatError("age header MAC is not 32 bytes")
            length = len(raw) + len(line) - 3
            return Header(tuple(stanzas), mac, bytes(raw), length)
        if not line.startswith(b"-> "):
            raise AgeFormatError("age header: expected a stanza ('-> ') or the MAC ('--- ')")
        if len(stanzas) >= _MAX_STANZAS:
            raise AgeFormatError("age header has too many stanzas")
        raw += line
        words = line[3:-1].split(b" ")
        kind, args = _printable(words[0]), tuple(_printable(w) for w in words[1:])
        body = bytearray()
        while True:
            body_line = _readline(source, len(raw))
            raw += body_line
            text = body_line[:-1]
            if len(text) > _COLUMNS:
                raise AgeFormatError("age stanza body line is longer than 64 columns")
            body += b64decode(text.decode("ascii", errors="replace"))
            if len(text) < _COLUMNS:
                break
        stanzas.append(Stanza(kind, args, bytes(body)))


def unwrap_file_key(header: Header, identities: Sequence[X25519Identity]) -> bytes:
    """Find the file key with any identity, then check the header MAC with it."""
    if any(s.type == "scrypt" for s in header.stanzas):
        raise NoIdentityMatched("passphrase-encrypted (scrypt) age files are not supported")
    for stanza in header.stanzas:
        for identity in identities:
            file_key = identity.unwrap(stanza)
            if file_key is None:
                continue
            if len(file_key) != FILE_KEY_SIZE:
                raise AgeFormatError("unwrapped file key is not 16 bytes")
            if not hmac.compare_digest(header_mac(file_key, header.mac_input), header.mac):
                raise AuthenticationFailed("age header MAC does not verify: header was altered")
            return file_key
    raise NoIdentityMatched("none of the given identities can decrypt this file")
