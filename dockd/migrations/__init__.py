"""Alembic migrations of the catalog, shipped inside the package and run from code.

`dockd.catalog.migrate` points Alembic here; no alembic.ini is needed at run time.
"""
