"""LinkThrottle keeps a simulated link at or below its rate."""

from __future__ import annotations

import threading
import time

import pytest
from dockd_sim.link import LinkThrottle


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s


def test_unlimited_never_sleeps():
    fake = FakeTime()
    link = LinkThrottle(0, clock=fake.clock, sleep=fake.sleep)
    for _ in range(1000):
        link.consume(1 << 20)
    assert fake.slept == [] and link.unlimited


def test_each_transfer_takes_its_share_of_time():
    fake = FakeTime()
    link = LinkThrottle(40, clock=fake.clock, sleep=fake.sleep)
    for _ in range(40):
        link.consume(1_000_000)
    assert fake.now - 100.0 == pytest.approx(1.0)  # 40 MB at 40 MB/s


def test_idle_time_is_not_banked_for_a_long_burst():
    fake = FakeTime()
    link = LinkThrottle(10, clock=fake.clock, sleep=fake.sleep)
    link.consume(1_000_000)
    fake.now += 60  # the host was busy for a minute
    start = fake.now
    for _ in range(10):
        link.consume(1_000_000)
    assert fake.now - start >= 1.0 - 0.021  # at most the small slack is caught up


def test_real_time_rate_is_not_exceeded():
    link = LinkThrottle(20)
    start = time.monotonic()
    for _ in range(8):
        link.consume(500_000)
    elapsed = time.monotonic() - start
    assert 0.2 - 0.025 <= elapsed < 1.0


def test_threads_share_the_rate():
    link = LinkThrottle(20)
    start = time.monotonic()
    threads = [threading.Thread(target=lambda: [link.consume(250_000) for _ in range(4)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start  # 4 MB in total at 20 MB/s
    assert 0.2 - 0.025 <= elapsed < 1.0


def test_negative_rate_is_refused():
    with pytest.raises(ValueError, match=">= 0"):
        LinkThrottle(-1)
    with pytest.raises(ValueError):
        LinkThrottle(float("nan"))
