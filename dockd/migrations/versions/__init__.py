"""Catalog revisions, oldest first. Never edit a released one: add a new revision."""
