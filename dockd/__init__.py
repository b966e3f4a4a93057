"""dockd: ingest daemon for body-worn camera docking stations."""

__version__ = "0.1.0"
