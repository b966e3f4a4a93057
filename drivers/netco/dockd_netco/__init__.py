"""dockd driver for NetCo-style body-worn cameras."""
