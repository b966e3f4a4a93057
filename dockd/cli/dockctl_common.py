"""Plumbing shared by the dockctl command modules: the --config option, opening the catalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dockd.catalog import Catalog
from dockd.catalog.db import sqlite_path
from dockd.config import DEFAULT_CONFIG_PATH, Config, load_config
from dockd.errors import CatalogError

F = TypeVar("F", bound=Callable[..., Any])

ACTOR = "dockctl"


def config_option(func: F) -> F:
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
        default=DEFAULT_CONFIG_PATH, show_default=True,
        help="dockd config file (names the catalog and the storage root).",
    )(func)


def load(config_path: Path) -> Config:
    return load_config(config_path)


def open_catalog(config: Config) -> Catalog:
    """Open the daemon's existing catalog; never create an empty one in a wrong place."""
    try:
        path = sqlite_path(make_url(config.catalog.url))
    except ArgumentError as exc:
        raise CatalogError(f"bad catalog URL in {config.source}: {exc}") from exc
    if path is not None and not path.is_file():
        raise CatalogError(f"no catalog at {path} (see [catalog] url in {config.source})")
    return Catalog.open(config.catalog.url, create_dirs=False, actor=operator(),
                        host=config.host_id)


def vault_client(config: Config) -> Any:
    """The vault named by `[vault]`, or None when there is none (boto3 loads only then)."""
    if config.vault is None:
        return None
    from dockd.vault import VaultClient  # noqa: PLC0415 - boto3 costs ~0.3 s to import

    return VaultClient(config.vault)


def operator() -> str:
    """Who runs dockctl, for the audit trail: `dockctl:<OS user>` (the user behind sudo
    when there is one)."""
    import getpass  # noqa: PLC0415
    import os  # noqa: PLC0415

    try:
        user = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{ACTOR}:{user}"
