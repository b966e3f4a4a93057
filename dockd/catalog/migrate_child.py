"""`python -m dockd.catalog.migrate_child`: upgrade the catalog whose URL arrives on stdin.

The daemon runs this (see `migrate.upgrade_in_child`) so that Alembic is loaded only in a
process that exits right after. Errors: one line on stderr, and an exit code the parent maps
back to the same error type.
"""

from __future__ import annotations

import sys

from dockd.catalog.db import make_engine
from dockd.catalog.migrate import EXIT_CATALOG, EXIT_VERSION, upgrade
from dockd.errors import CatalogVersionError, DockdError


def main() -> int:
    url = sys.stdin.read().strip()
    try:
        engine = make_engine(url, create_dirs=False)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    except CatalogVersionError as exc:
        print(exc, file=sys.stderr)
        return EXIT_VERSION
    except DockdError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CATALOG
    except Exception as exc:  # the parent turns any failure into one line
        print(f"cannot migrate the catalog: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CATALOG
    return 0


if __name__ == "__main__":
    sys.exit(main())
