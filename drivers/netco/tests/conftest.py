"""Fixtures for the netco driver tests (helpers in netco_rig.py)."""

from netco_rig import make_rig, rig

__all__ = ["make_rig", "rig"]
