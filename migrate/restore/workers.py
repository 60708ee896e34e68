"""Run a function over many objects on a thread pool with a bounded number in flight.

`pool.map` submits every item at once: one Future (with its lock and condition) per
object, all alive until the level ends; at 100k objects that is the largest share of a
restore's memory.  Here at most `window` are submitted ahead of the workers, so memory
stays flat in the level's size while the workers never wait for work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_all(
    pool: ThreadPoolExecutor, fn: Callable[[T], Any], items: Iterable[T], window: int
) -> None:
    """fn(item) for every item; the first exception is raised once the in-flight calls
    have ended (as list(pool.map(...)) would raise it)."""
    pending: set[Future[Any]] = set()
    try:
        for item in items:
            if len(pending) >= window:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    fut.result()
            pending.add(pool.submit(fn, item))
    finally:
        done, _ = wait(pending)
    for fut in done:
        fut.result()


def map_all(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: list[T], window: int) -> list[R]:
    """[fn(item) for item in items], computed on the pool with at most `window` pending."""
    out: list[Any] = [None] * len(items)

    def one(i: int) -> None:
        out[i] = fn(items[i])

    run_all(pool, one, range(len(items)), window)
    return out
