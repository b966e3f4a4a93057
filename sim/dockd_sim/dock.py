"""The simulated dock: plays a scenario's timeline on a simulated USB bus.

Each camera is plugged at its `dock_at_s` into slot `slot` of the dock's hub, pulled at
`undock_at_s`, and pulled when its own model says it left the bus (an unplug fault) — then,
with `redock_after_s`, plugged back later. Every plug and pull is announced as a
`DeviceEvent`, like udev would, after the bus already shows the change.

The dock knows no vendor: `make_camera(spec, state)` (from the driver registry) builds the
device model.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from dockd.events import Action, DeviceEvent, UsbDeviceRef
from dockd_sim.device import SimCamera
from dockd_sim.port_fault import PortFault
from dockd_sim.pyusb_backend import SimBackend
from dockd_sim.spec import CameraSpec, Scenario
from dockd_sim.state import CameraState

MakeCamera = Callable[[CameraSpec, CameraState], SimCamera]
EventSink = Callable[[DeviceEvent], None]

# how often the dock looks whether a camera model left the bus by itself
_POLL_S = 0.02


@dataclass(order=True)
class _Plan:
    at: float
    seq: int
    plug: bool = field(compare=False)
    index: int = field(compare=False)


@dataclass
class _Docked:
    camera: SimCamera
    address: int
    ref: UsbDeviceRef


def port_path(scenario: Scenario, slot: int) -> str:
    """Slot 3 behind hub "1-1" is port path "1-1.3"."""
    return f"{scenario.dock.hub_port_path}.{slot}"


def _port_numbers(path: str) -> tuple[int, ...]:
    return tuple(int(p) for p in path.split("-", 1)[1].split("."))


class SimulatedDock:
    """Plays the scenario. `start()` plugs the cameras due at time 0 before it returns."""

    def __init__(self, scenario: Scenario, states: Sequence[CameraState], backend: SimBackend,
                 make_camera: MakeCamera, on_event: EventSink | None = None, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if [s.spec for s in states] != list(scenario.cameras):
            raise ValueError("states must be the scenario's cameras, in scenario order")
        self.scenario = scenario
        self.states = list(states)
        self.backend = backend
        self.make_camera = make_camera
        #: where events go when no on_event callback is given
        self.events: queue.Queue[DeviceEvent] = queue.Queue()
        self._emit: EventSink = on_event if on_event is not None else self.events.put
        self._clock = clock
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None
        self._seq = 0
        self._plans: list[_Plan] = []
        self._docked: dict[int, _Docked] = {}
        self._undocked_for_good: set[int] = set()
        #: one random stream per faulty port, for the dock's whole run
        self.port_faults = {f.slot: PortFault(f) for f in scenario.dock.port_faults}
        for i, spec in enumerate(scenario.cameras):
            self._schedule(spec.dock_at_s, plug=True, index=i)
            if spec.undock_at_s is not None:
                self._schedule(spec.undock_at_s, plug=False, index=i)

    def _schedule(self, at: float, *, plug: bool, index: int) -> None:
        self._seq += 1
        heapq.heappush(self._plans, _Plan(at, self._seq, plug, index))

    # --- control --------------------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("the dock is already running")
            self._t0 = self._clock()
            self._step()
            self._thread = threading.Thread(target=self._run, name="sim-dock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the timeline; unplug every camera and close its model (saving its state).
        No REMOVE events: the daemon is going away, the cameras are not."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for docked in self._docked.values():
                self.backend.unplug(docked.address)
                docked.camera.close()
            self._docked.clear()

    def pending(self) -> bool:
        """True while some camera is still to be plugged in later — including one that left
        the bus by itself and will be docked again, before the timeline thread noticed."""
        with self._lock:
            if any(p.plug for p in self._plans):
                return True
            return any(
                docked.camera.unplugged()
                and self.scenario.cameras[index].redock_after_s is not None
                and index not in self._undocked_for_good
                for index, docked in self._docked.items())

    def finished_plugging(self) -> bool:
        """True once the dock runs and every plug the timeline holds has happened."""
        with self._lock:
            return self._t0 is not None and not self.pending()

    def docked(self) -> list[UsbDeviceRef]:
        with self._lock:
            return [d.ref for d in self._docked.values()]

    # --- the timeline -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                self._step()
                wait = _POLL_S
                if self._plans and self._t0 is not None:
                    wait = min(wait, max(0.0, self._t0 + self._plans[0].at - self._clock()))
            self._stop.wait(wait)

    def _step(self) -> None:
        """Do every plan that is due, then pull cameras whose model left the bus."""
        assert self._t0 is not None
        now = self._clock() - self._t0
        while self._plans and self._plans[0].at <= now:
            plan = heapq.heappop(self._plans)
            if plan.plug:
                self._plug(plan.index)
            else:
                self._undocked_for_good.add(plan.index)
                self._plans = [p for p in self._plans if p.index != plan.index]
                heapq.heapify(self._plans)
                self._unplug(plan.index)
        for index, docked in list(self._docked.items()):
            if docked.camera.unplugged():
                self._unplug(index)
                redock = self.scenario.cameras[index].redock_after_s
                if redock is not None and index not in self._undocked_for_good:
                    self._schedule(now + redock, plug=True, index=index)

    def _plug(self, index: int) -> None:
        if index in self._docked or index in self._undocked_for_good:
            return
        spec = self.scenario.cameras[index]
        camera = self.make_camera(spec, self.states[index])
        path = port_path(self.scenario, spec.slot)
        address = self.backend.plug(camera, bus=self.scenario.dock.bus,
                                    port_numbers=_port_numbers(path), link_mb_s=spec.link_mb_s,
                                    port_fault=self.port_faults.get(spec.slot))
        desc = camera.description
        ref = UsbDeviceRef(
            key=f"sim:{path}", port_path=path, bus_number=self.scenario.dock.bus, address=address,
            vendor_id=desc.vendor_id, product_id=desc.product_id,
            interface_classes=tuple(i.interface_class for i in desc.interfaces),
            serial=desc.serial,
        )
        self._docked[index] = _Docked(camera, address, ref)
        self._emit(DeviceEvent(Action.ADD, ref))

    def _unplug(self, index: int) -> None:
        docked = self._docked.pop(index, None)
        if docked is None:
            return
        self.backend.unplug(docked.address)
        docked.camera.close()
        self._emit(DeviceEvent(Action.REMOVE, docked.ref))
