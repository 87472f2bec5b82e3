"""The drain's clock: when it started, when it must end, whether it has ended; the one condition
that guards the drain's shared state; and the streams to close when it ends.

Every part of a drain (the pods it tracks, the budgets it watches, the fence, the evictions) shares
one :class:`Deadline`: each waits on its condition and each change that another may wait for
notifies it. So the parts need one another's state, never the drain that holds them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from functions.gateways.kube.watch import WatchStop


class Deadline:
    def __init__(self, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.end = self.started + seconds
        self.lock = threading.Condition()  # reentrant: a waiter's predicate may take it again
        self.streams = WatchStop()  # closes the drain's watch streams when it ends
        self._finished = threading.Event()

    def remaining(self) -> float:
        return self.end - self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def running(self) -> bool:
        """Neither finished nor past the deadline."""
        return not self._finished.is_set() and self.remaining() > 0

    def finish(self) -> None:
        with self.lock:
            self._finished.set()
            self.lock.notify_all()

    def notify(self) -> None:
        """Wake whoever waits on the condition (the state they wait for has changed)."""
        with self.lock:
            self.lock.notify_all()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless the drain ends first; False when it should stop."""
        seconds = min(seconds, max(0.0, self.remaining()))
        return not self._finished.wait(seconds) and self.remaining() > 0

    def wait_for(self, done: Callable[[], bool], seconds: float) -> None:
        """Wait on the condition until ``done()`` (checked under its lock), the drain ends, or
        ``seconds`` pass."""
        end = self.clock() + seconds
        with self.lock:
            while not self._finished.is_set() and not done():
                left = end - self.clock()
                if left <= 0:
                    return
                self.lock.wait(left)

    def wait_while(self, busy: Callable[[], bool]) -> None:
        """Wait on the condition while ``busy()`` (checked under its lock), until the deadline; looks
        again at least every second."""
        with self.lock:
            while busy() and self.remaining() > 0:
                self.lock.wait(min(1.0, max(0.01, self.remaining())))
