"""The vault: age-encrypted evidence copied to an S3 bucket under Object Lock.

`VaultClient` is the S3 layer (upload with server-checked SHA-256, resume, proof by head or
by re-reading, lock controls); `parse_vault_settings` reads the `[vault]` table. Nothing
here knows the catalog: callers record what a `Receipt` says.
"""

from dockd.vault.client import BucketState, Download, ObjectState, Receipt, VaultClient
from dockd.vault.errors import (
    VaultError,
    VaultIntegrityError,
    VaultMisconfigured,
    VaultObjectMissing,
    VaultRefused,
    VaultUnreachable,
)
from dockd.vault.settings import Secret, VaultSettings, parse_vault_settings

__all__ = [
    "BucketState",
    "Download",
    "ObjectState",
    "Receipt",
    "Secret",
    "VaultClient",
    "VaultError",
    "VaultIntegrityError",
    "VaultMisconfigured",
    "VaultObjectMissing",
    "VaultRefused",
    "VaultSettings",
    "VaultUnreachable",
    "parse_vault_settings",
]
