"""Client-side rate limit (QPS with a burst), shared by every thread of one cluster client.

Like client-go's token bucket: a fresh bucket holds `burst` tokens, refilled at `qps`
per second; each request takes one, waiting when the bucket is empty.  Keeps a big
parallel backup or restore from tripping the API server's priority-and-fairness limits.
"""

from __future__ import annotations

import threading
import time


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
