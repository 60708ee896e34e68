"""Client-side limits on the requests to one API server, shared by every thread of one
cluster client.

Two kinds, chosen by `--qps` (see `limiter_for`):

* `TokenBucket` (`--qps N`, fixed): like client-go's, a fresh bucket holds `burst`
  tokens refilled at `qps` per second; each request takes one.  `--qps 0`: no limit.
* `AdaptiveLimit` (the default): no fixed cap, so a restore runs as fast as the server
  takes it; the server says when that is too fast.  When priority and fairness (APF)
  or max-inflight rejects a request with 429, the requests allowed in flight are halved
  (at most once per round of requests: the others already in flight when it was cut
  are answered by the same overload) and every thread holds off for the 429's
  Retry-After; each second without a 429 allows one more in flight again (AIMD, as
  TCP's congestion window).  The 429'd request itself is retried by Cluster.request.
"""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)

# AdaptiveLimit's numbers.
CEILING = 1024  # requests in flight before any 429: more than any pool of ours (no cap)
RAMP_PER_S = 1.0  # in-flight slots regained per second without a 429
MAX_HOLD_S = 10.0  # the longest Retry-After honoured (as retry_wait's)


class TokenBucket:
    """Thread-safe token bucket.  qps <= 0 means unlimited."""

    def __init__(self, qps: float, burst: int) -> None:
        self.qps = qps
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, sleeping as needed; returns the seconds waited."""
        if self.qps <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            wait = -self._tokens / self.qps if self._tokens < 0 else 0.0
        if wait > 0:
            time.sleep(wait)
        return wait

    def release(self, started: float, throttled: bool, retry_after: float | None) -> None:
        """A fixed rate does not adapt (the 429 itself is retried by the caller)."""


class AdaptiveLimit:
    """Requests in flight, AIMD on the server's 429s.  `acquire()` returns the ticket
    (the time the request was let through) that `release()` takes back."""

    def __init__(self, name: str = "", ceiling: int = CEILING) -> None:
        self.name = name
        self.ceiling = float(ceiling)
        self.limit = float(ceiling)
        self.in_flight = 0
        self.backoffs = 0  # times the limit was cut
        self.throttled = 0  # 429s seen
        self._cut_at = 0.0  # when the limit was last cut
        self._hold_until = 0.0  # Retry-After: nothing is sent before then
        self._grown_at = time.monotonic()
        self._cond = threading.Condition()

    def acquire(self) -> float:
        with self._cond:
            while True:
                now = time.monotonic()
                if now < self._hold_until:
                    self._cond.wait(self._hold_until - now)
                elif self.in_flight >= int(self.limit):
                    self._cond.wait(0.5)
                else:
                    self.in_flight += 1
                    return now

    def release(self, started: float, throttled: bool, retry_after: float | None) -> None:
        with self._cond:
            self.in_flight -= 1
            now = time.monotonic()
            if throttled:
                self.throttled += 1
                if started >= self._cut_at:  # sent after the last cut: a new overload
                    self._cut(now, retry_after)
            else:  # grows with the time since the last growth (or the end of a hold)
                grown = RAMP_PER_S * max(0.0, now - self._grown_at)
                self.limit = min(self.ceiling, self.limit + grown)
                self._grown_at = max(self._grown_at, now)
            self._cond.notify_all()

    def _cut(self, now: float, retry_after: float | None) -> None:
        before = min(self.limit, float(self.in_flight + 1))
        self.limit = max(1.0, before / 2)
        self._cut_at = now
        self.backoffs += 1
        hold = min(retry_after or 0.0, MAX_HOLD_S)
        self._hold_until = max(self._hold_until, now + hold)
        self._grown_at = self._hold_until
        log.info(
            "%s: the API server throttles us (429): requests in flight %d -> %d, "
            "holding off %.1fs (backoff %d)",
            self.name,
            before,
            self.limit,
            hold,
            self.backoffs,
        )


Limiter = TokenBucket | AdaptiveLimit


def limiter_for(qps: float | None, burst: int, name: str = "") -> Limiter:
    """None (no --qps): adaptive; 0: no limit; N: a fixed N per second with `burst`."""
    if qps is None:
        return AdaptiveLimit(name)
    return TokenBucket(qps, burst)
