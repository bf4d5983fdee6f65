"""The one way the demo, the tests and the benchmarks wait for something."""

from __future__ import annotations

import time


def wait_for(predicate, timeout=90, interval=0.5, what="condition"):
    """Poll PREDICATE until it returns something true; return that.

    Waits on a condition, never a fixed sleep: `timeout` is only the bound
    after which something is plainly wrong, generous enough for a slow machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
