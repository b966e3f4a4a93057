"""SIGHUP: read the config and drivers.d again without dropping transfers in flight.

A broken new config is refused with one log line and the old one kept. Settings that only
take effect at start (where the catalog and store live, how many workers exist) are kept
as they were and the log says a restart is needed for them.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import structlog

from dockd.config import Config, check_for_ingest, load_config
from dockd.devices import DeviceOpener
from dockd.errors import DockdError
from dockd.ingest import IngestContext
from dockd.logs import configure_logging
from dockd.registry import DriverRegistry

log = structlog.get_logger(__name__)

#: (section, key) pairs read once at start
RESTART_ONLY = (("storage", "path"), ("catalog", "url"), ("ingest", "max_parallel_cameras"))


class Reloader:
    def __init__(self, config_path: Path | None, ctx: IngestContext, registry: DriverRegistry,
                 backend: Any, log_stream: Any) -> None:
        self.config_path = config_path
        self.ctx = ctx
        self.registry = registry
        self.backend = backend
        self.log_stream = log_stream

    def reload(self, supervisor: Any) -> bool:
        """Apply the config file as it is now; True when applied."""
        old = self.ctx.config
        try:
            new = load_config(self.config_path)
            recipients = check_for_ingest(new)
            opener = DeviceOpener.from_registry(self.registry, new.drivers.dropin_dir,
                                                self.backend)
        except DockdError as exc:
            log.error("config_reload_refused", error=str(exc), kept=str(old.source))
            return False
        new, pinned = _keep_restart_only(old, new)
        self.ctx.config = new
        self.ctx.recipients = recipients
        supervisor.opener = opener
        if (new.log.format, new.log.level) != (old.log.format, old.log.level):
            configure_logging(new.log.format, new.log.level, stream=self.log_stream)
        log.info("config_reloaded", source=str(new.source), recipients=len(recipients),
                 match_rules=len(opener.matcher.rules),
                 needs_restart=[f"{s}.{k}" for s, k in pinned])
        return True


def _keep_restart_only(old: Config, new: Config) -> tuple[Config, list[tuple[str, str]]]:
    pinned = []
    for section, key in RESTART_ONLY:
        old_value = getattr(getattr(old, section), key)
        if getattr(getattr(new, section), key) != old_value:
            pinned.append((section, key))
            new = replace(new, **{section: replace(getattr(new, section), **{key: old_value})})
    return new, pinned
