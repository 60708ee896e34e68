"""Pure logic of the cluster layer: kubeconfig errors, version parsing, the rate limiter,
and the retry/error mapping against a scripted HTTP endpoint (no cluster involved)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from migrate.cluster import APIResource, Cluster, ClusterRef, ServerVersion, ratelimit
from migrate.cluster.config import load_configuration
from migrate.cluster.ratelimit import AdaptiveLimit, TokenBucket, limiter_for
from migrate.errors import ClusterError, ClusterUnreachable, Forbidden, KubeconfigError, NotFound


def kubeconfig(tmp_path: Path, server: str, contexts: tuple[str, ...] = ("one",)) -> str:
    ctxs = "".join(f"- name: {c}\n  context: {{cluster: c, user: u}}\n" for c in contexts)
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster: {{server: '{server}'}}\n"
        "users:\n- name: u\n  user: {token: secret-token}\n"
        f"contexts:\n{ctxs}current-context: {contexts[0]}\n"
    )
    return str(path)


def test_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError, match="kubeconfig not found") as info:
        load_configuration(ClusterRef(str(tmp_path / "nope")))
    assert "--kubeconfig" in info.value.hint


def test_unknown_context_lists_the_known_ones(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path, "http://127.0.0.1:1", ("one", "two"))
    with pytest.raises(KubeconfigError, match="context 'three' not found") as info:
        load_configuration(ClusterRef(path, "three"))
    assert "one, two" in info.value.hint
    assert load_configuration(ClusterRef(path, "two"))[0].host == "http://127.0.0.1:1"


def test_kubeconfig_env_var_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = kubeconfig(tmp_path, "http://127.0.0.1:2")
    monkeypatch.setenv("KUBECONFIG", path)
    assert load_configuration(ClusterRef())[0].host == "http://127.0.0.1:2"


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"major": "1", "minor": "31", "gitVersion": "v1.31.4"}, (1, 31)),
        ({"major": "1", "minor": "30+", "gitVersion": "v1.30.2-eks-1"}, (1, 30)),
        ({"major": "", "minor": ""}, (0, 0)),
    ],
)
def test_server_version_parse(doc: dict[str, str], expected: tuple[int, int]) -> None:
    v = ServerVersion.parse(doc)
    assert (v.major, v.minor) == expected
    assert ServerVersion(1, 30) < ServerVersion(1, 31) < ServerVersion(2, 0)


def test_token_bucket_limits_rate() -> None:
    bucket = TokenBucket(qps=50, burst=5)
    start = time.monotonic()
    for _ in range(30):
        bucket.acquire()
    # 5 from the burst, 25 more at 50/s take at least 0.5 s
    assert time.monotonic() - start >= 0.45
    unlimited = TokenBucket(qps=0, burst=1)
    assert sum(unlimited.acquire() for _ in range(1000)) == 0


def test_adaptive_limit_halves_on_429_once_a_round_and_ramps_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [100.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: clock[0])
    limit = AdaptiveLimit("t")
    tickets = [limit.acquire() for _ in range(16)]  # 16 in flight, no cap yet
    assert limit.in_flight == 16 and limit.limit == ratelimit.CEILING
    clock[0] += 0.1
    limit.release(tickets[0], throttled=True, retry_after=None)
    assert limit.limit == 8 and limit.backoffs == 1  # half of what was in flight
    for t in tickets[1:6]:  # answers to requests sent before the cut: the same overload
        limit.release(t, throttled=True, retry_after=None)
    assert limit.limit == 8 and limit.backoffs == 1 and limit.throttled == 6
    for t in tickets[6:]:
        limit.release(t, throttled=False, retry_after=None)
    clock[0] += 4.0  # four seconds of successes: four more in flight allowed
    limit.release(limit.acquire(), throttled=False, retry_after=None)
    assert limit.limit == 12
    clock[0] += 0.1  # a request sent after the cut is throttled: cut again
    limit.release(limit.acquire(), throttled=True, retry_after=None)
    assert limit.backoffs == 2 and limit.limit == 1.0  # 1 was in flight: the floor


def test_adaptive_limit_holds_every_thread_for_retry_after() -> None:
    limit = AdaptiveLimit("t")
    first = limit.acquire()
    limit.release(first, throttled=True, retry_after=1.0)
    start = time.monotonic()
    waited = []

    def send() -> None:
        ticket = limit.acquire()
        waited.append(time.monotonic() - start)
        limit.release(ticket, throttled=False, retry_after=None)

    threads = [threading.Thread(target=send) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(waited) == 3 and min(waited) >= 0.9  # Retry-After: 1 honoured by all
    assert limit.in_flight == 0


def test_limiter_for_the_qps_flag() -> None:
    assert isinstance(limiter_for(None, 100), AdaptiveLimit)  # the default: adaptive
    fixed = limiter_for(20, 5)
    assert isinstance(fixed, TokenBucket) and (fixed.qps, fixed.burst) == (20, 5)
    unlimited = limiter_for(0, 1)
    assert isinstance(unlimited, TokenBucket) and unlimited.acquire() == 0


class Scripted(http.server.BaseHTTPRequestHandler):
    """Answers GETs from a queue of (status, headers, body); counts requests."""

    script: ClassVar[list[tuple[int, dict[str, str], dict[str, object]]]] = []
    seen: ClassVar[list[str]] = []
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization", ""))
        self.paths.append(self.path)
        status, headers, body = self.script.pop(0) if self.script else (200, {}, {"ok": True})
        data = json.dumps(body).encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[tuple[str, type[Scripted]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Scripted.script, Scripted.seen, Scripted.paths = [], [], []
    yield kubeconfig(tmp_path, f"http://127.0.0.1:{server.server_address[1]}"), Scripted
    server.shutdown()


def test_transient_errors_are_retried(scripted: tuple[str, type[Scripted]]) -> None:
    path, handler = scripted
    handler.script = [
        (503, {}, {"message": "unavailable"}),
        (429, {"Retry-After": "1"}, {"message": "slow down"}),
        (500, {}, {"message": "etcd leader changed"}),
    ]
    c = Cluster(ClusterRef(path), qps=0)
    assert c.get_path("/x") == {"ok": True}
    assert len(handler.seen) == 4
    assert handler.seen[0] == "Bearer secret-token"


def test_429_cuts_the_default_limiter_and_is_retried_after_retry_after(
    scripted: tuple[str, type[Scripted]],
) -> None:
    path, handler = scripted
    handler.script = [(429, {"Retry-After": "1"}, {"message": "too many requests"})]
    c = Cluster(ClusterRef(path))  # default flags: the adaptive limiter
    assert isinstance(c.limiter, AdaptiveLimit)
    start = time.monotonic()
    assert c.get_path("/x") == {"ok": True}
    assert time.monotonic() - start >= 0.9 and len(handler.seen) == 2
    assert (c.limiter.throttled, c.limiter.backoffs, c.limiter.in_flight) == (1, 1, 0)


def test_persistent_failure_raises_the_final_class(scripted: tuple[str, type[Scripted]]) -> None:
    path, handler = scripted
    handler.script = [(200, {}, {})] + [(503, {}, {"message": "down"})] * 100
    c = Cluster(ClusterRef(path), qps=0, retry_timeout=1.0)
    c.get_path("/first")
    with pytest.raises(ClusterError) as info:
        c.get_path("/x")
    assert info.value.status == 503 and "down" in info.value.message
    assert type(info.value) is ClusterError


@pytest.mark.parametrize(("status", "cls"), [(403, Forbidden), (401, Forbidden), (404, NotFound)])
def test_status_mapping_does_not_retry(
    scripted: tuple[str, type[Scripted]], status: int, cls: type[ClusterError]
) -> None:
    path, handler = scripted
    handler.script = [(status, {}, {"message": "nope", "reason": "x"})]
    with pytest.raises(cls, match="nope"):
        Cluster(ClusterRef(path), qps=0).get_path("/x")
    assert len(handler.seen) == 1


def test_unreachable_server_fails_fast(tmp_path: Path) -> None:
    c = Cluster(ClusterRef(kubeconfig(tmp_path, "http://127.0.0.1:1")), connect_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(ClusterUnreachable, match="cannot reach"):
        c.version()
    assert time.monotonic() - start < 10


def test_list_reads_ahead_and_takes_the_token_a_410_offers(
    scripted: tuple[str, type[Scripted]],
) -> None:
    """Pages come in order with the next one asked for early; an expired continue token
    (410 Gone) is replaced by the one the server offers, and the list goes on."""
    path, handler = scripted
    meta = {"resourceVersion": "7"}
    handler.script = [
        (200, {}, {"metadata": {**meta, "continue": "t1"}, "items": [{"metadata": {"name": "a"}}]}),
        (410, {}, {"message": "expired", "metadata": {"continue": "t2"}}),
        (200, {}, {"metadata": {**meta, "continue": "t3"}, "items": [{"metadata": {"name": "b"}}]}),
        (200, {}, {"metadata": meta, "items": [{"metadata": {"name": "c"}}]}),
    ]
    c = Cluster(ClusterRef(path), qps=0)
    res = APIResource("", "v1", "configmaps", "ConfigMap", True)
    snapshot: dict[str, object] = {}
    names = [o["metadata"]["name"] for o in c.list(res, "ns", limit=1, snapshot=snapshot)]
    assert names == ["a", "b", "c"]
    assert snapshot == {"resourceVersion": "7", "continue": "t1"}
    tokens = [p.partition("continue=")[2] for p in handler.paths]
    assert tokens == ["", "t1", "t2", "t3"]
    c.close()
