"""age v1 encryption (X25519 recipients) built on `cryptography`'s primitives.

Modules: `bech32` (key string encoding), `keys` (recipients/identities, stanza wrap/unwrap),
`header` (text header + MAC), `stream` (64 KiB STREAM payload, writer/reader with resume).
"""

from dockd.crypto.header import build_header, parse_header, unwrap_file_key
from dockd.crypto.keys import (
    Stanza,
    X25519Identity,
    X25519Recipient,
    generate_identity,
    load_identities,
    parse_identities,
    parse_identity,
    parse_recipient,
)
from dockd.crypto.stream import (
    CHUNK,
    SEALED,
    AgeReader,
    AgeWriter,
    PayloadOpener,
    PayloadSealer,
    decrypt_file,
    decrypt_to,
    payload_key,
    sealed_size,
)

__all__ = [
    "CHUNK",
    "SEALED",
    "AgeReader",
    "AgeWriter",
    "PayloadOpener",
    "PayloadSealer",
    "Stanza",
    "X25519Identity",
    "X25519Recipient",
    "build_header",
    "decrypt_file",
    "decrypt_to",
    "generate_identity",
    "load_identities",
    "parse_header",
    "parse_identities",
    "parse_identity",
    "parse_recipient",
    "payload_key",
    "sealed_size",
    "unwrap_file_key",
]
