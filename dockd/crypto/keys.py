"""age X25519 recipients (`age1…`) and identities (`AGE-SECRET-KEY-1…`).

A recipient can only wrap a file key (the daemon holds recipients only: it can write
evidence but never read it back); an identity unwraps it (verify/export on an operator's
machine).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from dockd.crypto import bech32
from dockd.crypto.encoding import b64decode as _unb64
from dockd.crypto.encoding import b64encode as _b64
from dockd.crypto.encoding import hkdf_sha256
from dockd.errors import AgeFormatError, CryptoError, KeyFormatError

RECIPIENT_HRP = "age"
IDENTITY_HRP = "age-secret-key-"
X25519_LABEL = b"age-encryption.org/v1/X25519"
FILE_KEY_SIZE = 16
_KEY_SIZE = 32
_ZERO_NONCE = bytes(12)


@dataclass(frozen=True)
class Stanza:
    """One recipient stanza of an age header: type, arguments, binary body."""

    type: str
    args: tuple[str, ...]
    body: bytes


@dataclass(frozen=True)
class X25519Recipient:
    public: bytes  # 32 bytes

    @classmethod
    def parse(cls, text: str) -> X25519Recipient:
        hrp, data = bech32.decode(text.strip())
        if text.strip() != text.strip().lower():
            raise KeyFormatError("recipient must be lowercase (age1…)")
        if hrp != RECIPIENT_HRP:
            raise KeyFormatError(f"not an age X25519 recipient: prefix is {hrp!r}, not 'age'")
        if len(data) != _KEY_SIZE:
            raise KeyFormatError(f"recipient holds {len(data)} bytes, an X25519 key has 32")
        try:  # refuse now, at config load, a key that every later `wrap` would refuse
            X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(data))
        except ValueError as exc:
            raise KeyFormatError(
                "recipient is a low-order X25519 point: no file could be encrypted to it"
            ) from exc
        return cls(data)

    def __str__(self) -> str:
        return bech32.encode(RECIPIENT_HRP, self.public)

    def wrap(self, file_key: bytes) -> Stanza:
        ephemeral = X25519PrivateKey.generate()
        share = ephemeral.public_key().public_bytes_raw()
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(self.public))
        except ValueError as exc:  # all-zero shared secret: a low-order point
            raise KeyFormatError("recipient is a low-order X25519 point") from exc
        wrap_key = hkdf_sha256(shared, share + self.public, X25519_LABEL)
        body = ChaCha20Poly1305(wrap_key).encrypt(_ZERO_NONCE, file_key, None)
        return Stanza("X25519", (_b64(share),), body)


@dataclass(frozen=True)
class X25519Identity:
    secret: bytes  # 32 bytes

    @classmethod
    def parse(cls, text: str) -> X25519Identity:
        hrp, data = bech32.decode(text.strip())
        if hrp != IDENTITY_HRP:
            raise KeyFormatError(
                f"not an age X25519 identity: prefix is {hrp.upper()!r}, not 'AGE-SECRET-KEY-'"
            )
        if len(data) != _KEY_SIZE:
            raise KeyFormatError(f"identity holds {len(data)} bytes, an X25519 key has 32")
        return cls(data)

    @classmethod
    def generate(cls) -> X25519Identity:
        return cls(X25519PrivateKey.generate().private_bytes_raw())

    def __str__(self) -> str:
        return bech32.encode(IDENTITY_HRP, self.secret).upper()

    def __repr__(self) -> str:  # never print the secret by accident
        return f"X25519Identity(recipient={self.recipient()})"

    def recipient(self) -> X25519Recipient:
        public = X25519PrivateKey.from_private_bytes(self.secret).public_key()
        return X25519Recipient(public.public_bytes_raw())

    def unwrap(self, stanza: Stanza) -> bytes | None:
        """Return the file key if this stanza is for us, None if it is not."""
        if stanza.type != "X25519":
            return None
        if len(stanza.args) != 1:
            raise AgeFormatError("X25519 stanza must have exactly one argument")
        share = _unb64(stanza.args[0])
        if len(share) != _KEY_SIZE:
            raise AgeFormatError("X25519 stanza share is not 32 bytes")
        if len(stanza.body) != FILE_KEY_SIZE + 16:
            raise AgeFormatError("X25519 stanza body is not 32 bytes")
        private = X25519PrivateKey.from_private_bytes(self.secret)
        try:
            shared = private.exchange(X25519PublicKey.from_public_bytes(share))
        except ValueError as exc:
            raise AgeFormatError("X25519 stanza share is a low-order point") from exc
        ours = private.public_key().public_bytes_raw()
        wrap_key = hkdf_sha256(shared, share + ours, X25519_LABEL)
        try:
            return ChaCha20Poly1305(wrap_key).decrypt(_ZERO_NONCE, stanza.body, None)
        except InvalidTag:  # the stanza is for another recipient
            return None


def generate_identity() -> tuple[str, str]:
    """A new key pair as (identity string, recipient string)."""
    identity = X25519Identity.generate()
    return str(identity), str(identity.recipient())


def parse_recipient(text: str) -> X25519Recipient:
    return X25519Recipient.parse(text)


def parse_identity(text: str) -> X25519Identity:
    return X25519Identity.parse(text)


def parse_identities(text: str, source: str = "<identities>") -> list[X25519Identity]:
    """Parse an identity file as age-keygen writes it: '#' comments, blank lines, keys.

    A file with no line that even looks like a key (a recipient file, a clip, a config) is
    "not an age identity file: PATH"; a key line that is damaged names its line."""
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.strip().startswith("#")]
    if not any(line.upper().startswith(IDENTITY_HRP.upper() + "1") for _, line in lines):
        hint = ""
        if any(line.startswith(RECIPIENT_HRP + "1") for _, line in lines):
            hint = " (it holds a recipient, age1…: the public half; decrypting needs the " \
                   "AGE-SECRET-KEY-1… file made with it)"
        raise KeyFormatError(f"not an age identity file: {source}{hint}")
    found: list[X25519Identity] = []
    for number, stripped in lines:
        try:
            found.append(X25519Identity.parse(stripped))
        except KeyFormatError as exc:
            raise KeyFormatError(f"{source}, line {number}: {exc}") from exc
    return found


def load_identities(path: Path) -> list[X25519Identity]:
    try:
        size = path.stat().st_size
        if size > 1 << 20:  # a clip or an archive, say
            raise KeyFormatError(f"not an age identity file: {path}")
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:  # binary: no key file
        raise KeyFormatError(f"not an age identity file: {path}") from exc
    except OSError as exc:
        raise CryptoError(f"{path}: cannot read identity file: {exc.strerror or exc}") from exc
    return parse_identities(text, str(path))


def new_file_key() -> bytes:
    return os.urandom(FILE_KEY_SIZE)
