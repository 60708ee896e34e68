"""migrate.cluster.connections: kept-alive connections on http.client, without a
cluster (a local HTTP/1.1 server that keeps connections open, or drops them)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from migrate.cluster import Cluster, ClusterRef
from migrate.cluster.connections import Connections, Unreachable, direct_ok
from migrate.errors import ClusterUnreachable
from tests.test_cluster_unit import kubeconfig


class KeepAlive(http.server.BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive; records each request's client port.  `drop` holds
    request numbers (1-based) after which the server closes the connection without
    saying so (as an idle timeout does), `hang_up` those it closes without answering."""

    protocol_version = "HTTP/1.1"
    ports: ClassVar[list[int]] = []
    drop: ClassVar[set[int]] = set()
    hang_up: ClassVar[set[int]] = set()

    def do_GET(self) -> None:
        self.ports.append(self.client_address[1])
        n = len(self.ports)
        if n in self.hang_up:
            self.close_connection = True
            return
        data = json.dumps({"n": n}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if n in self.drop:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), KeepAlive)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    KeepAlive.ports, KeepAlive.drop, KeepAlive.hang_up = [], set(), set()
    yield kubeconfig(tmp_path, f"http://127.0.0.1:{srv.server_address[1]}")
    srv.shutdown()
    srv.server_close()


def test_connections_are_kept_alive_and_one_the_server_closed_is_replaced(server: str) -> None:
    KeepAlive.drop = {2}  # closed by the server after the 2nd answer, unannounced
    c = Cluster(ClusterRef(server), qps=0)
    assert [c.get_path("/x")["n"] for _ in range(4)] == [1, 2, 3, 4]
    ports = KeepAlive.ports
    assert ports[0] == ports[1] != ports[2] == ports[3]  # reused; replaced once


def test_a_request_the_server_hung_up_on_is_sent_again_on_a_new_connection(
    server: str,
) -> None:
    KeepAlive.hang_up = {2}  # the kept-alive connection dies under the 2nd request
    conns = Connections(_cfg(server), keep=2, connect_timeout=1, read_timeout=5)
    assert json.loads(conns.request("GET", "/x", None, {}).data)["n"] == 1
    assert json.loads(conns.request("GET", "/x", None, {}).data)["n"] == 3  # no retry loop
    ports = KeepAlive.ports
    assert ports[0] == ports[1] != ports[2]


def test_an_unreachable_server_is_named_with_the_reason(tmp_path: Path) -> None:
    c = Cluster(ClusterRef(kubeconfig(tmp_path, "http://127.0.0.1:1")), connect_timeout=0.5)
    with pytest.raises(ClusterUnreachable, match=r"cannot reach http://127\.0\.0\.1:1: .*refused"):
        c.version()


def test_a_fresh_connection_that_fails_is_not_retried_here(server: str) -> None:
    KeepAlive.hang_up = {1}  # no kept-alive connection to blame: the caller decides
    conns = Connections(_cfg(server), keep=2, connect_timeout=1, read_timeout=5)
    with pytest.raises(Unreachable):
        conns.request("GET", "/x", None, {})
    assert len(KeepAlive.ports) == 1


def _cfg(kubeconfig_path: str) -> Any:
    from migrate.cluster.config import load_configuration

    return load_configuration(ClusterRef(kubeconfig_path))[0]


def test_proxies_and_tls_server_names_keep_urllib3(server: str) -> None:
    cfg = _cfg(server)
    assert direct_ok(cfg)
    cfg.proxy = "http://127.0.0.1:3128"
    assert not direct_ok(cfg)
    cfg.proxy, cfg.tls_server_name = None, "kubernetes.default"
    assert not direct_ok(cfg)
