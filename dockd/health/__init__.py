"""Health for technicians: what each dock captures (battery, shift log, clock, storage), the
findings drawn from it, and the fleet report. See docs/health.md.
"""
