"""Run a function over many objects on a thread pool with a bounded number in flight.

`pool.map` submits every item at once: one Future (with its lock and condition) per
object, all alive until the level ends; at 100k objects that is the largest share of a
restore's memory.  Here at most `window` are submitted ahead of the workers, so memory
stays flat in the level's size while the workers never wait for work.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_all(
    pool: ThreadPoolExecutor, fn: Callable[[T], Any], items: Iterable[T], window: int
) -> None:
    """fn(item) for every item; the first exception is raised once the in-flight calls
    have ended (as list(pool.map(...)) would raise it), and no item is started after it.

    A semaphore of `window` slots, released as each call ends: O(1) per item (waiting on
    the set of pending futures costs a lock round on each of them per item)."""
    slots = threading.Semaphore(window)
    failed: list[BaseException] = []
    lock = threading.Lock()

    def ended(fut: Future[Any]) -> None:
        exc = fut.exception()
        if exc is not None:
            with lock:
                failed.append(exc)
        slots.release()

    try:
        for item in items:
            slots.acquire()
            if failed:
                slots.release()
                break
            try:
                fut = pool.submit(fn, item)
            except BaseException:  # (a pool shut down): its slot was never used
                slots.release()
                raise
            fut.add_done_callback(ended)
    finally:
        for _ in range(window):  # every slot back: nothing is in flight any more
            slots.acquire()
    if failed:
        raise failed[0]


def map_all(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: list[T], window: int) -> list[R]:
    """[fn(item) for item in items], computed on the pool with at most `window` pending."""
    out: list[Any] = [None] * len(items)

    def one(i: int) -> None:
        out[i] = fn(items[i])

    run_all(pool, one, range(len(items)), window)
    return out
