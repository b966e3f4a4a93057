"""The simulated dock: scenario files, camera state that persists like flash, and the two
transports (an in-process pyusb backend and a umockdev testbed) that carry a driver's
device-side model to the unchanged production code."""
