"""A plain HTTPS client for the benchmark's baselines, independent of kube-migrate's.

A baseline stands for the physical limit of a step: the same LISTs or POSTs with nothing
but HTTP around them.  Made with our own `Cluster`, it would share that client's costs
(the kubernetes package's configuration and pool, our retries, rate limiter, logging and
decoding) and the ratio would hide them.  So this is `http.client`: keep-alive
connections kept in a pool and reused by every worker thread, TLS from the kubeconfig
(its CA, client certificate or bearer token), and orjson for bodies (the parser ours
uses, so the ratio does not measure a JSON library).  Exec and auth-provider plugins are
not supported: the local planes use client certificates.
"""

from __future__ import annotations

import base64
import http.client
import os
import ssl
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import yaml

FIELD_MANAGER = "kube-migrate"  # as our creates send it: the server does the same work
RETRY_STATUSES = {429, 503}  # priority and fairness rejections: wait Retry-After, again
ATTEMPTS = 10


class RawError(RuntimeError):
    """An answer the baseline cannot go on from (the benchmark then stops)."""


def _named(entries: Any, name: str, what: str) -> dict[str, Any]:
    for entry in entries or []:
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise RawError(f"kubeconfig has no {what} named {name!r}")


def _pem(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    """`key`-data (base64) or `key` (a file, relative to the kubeconfig) as bytes."""
    if section.get(f"{key}-data"):
        return base64.b64decode(str(section[f"{key}-data"]))
    if section.get(key):
        return (base / str(section[key])).read_bytes()
    return None


def _tls(cluster: dict[str, Any], user: dict[str, Any], base: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    if cluster.get("insecure-skip-tls-verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ca = _pem(cluster, "certificate-authority", base)
        if ca:
            ctx.load_verify_locations(cadata=ca.decode())
    cert, key = _pem(user, "client-certificate", base), _pem(user, "client-key", base)
    if cert and key:  # ssl loads a chain from files only: a private folder, removed at once
        with tempfile.TemporaryDirectory(prefix="bench-raw-") as tmp:
            pair = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            for path, data in zip(pair, (cert, key), strict=True):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as out:
                    out.write(data)
            ctx.load_cert_chain(*pair)
    return ctx


def _auth_headers(user: dict[str, Any], base: Path) -> dict[str, str]:
    if user.get("exec") or user.get("auth-provider"):
        raise RawError("the raw baseline supports client certificates and tokens only")
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = (base / user["tokenFile"]).read_text().strip()
    if token:
        return {"Authorization": f"Bearer {token}"}
    if user.get("username"):
        pair = f"{user['username']}:{user.get('password', '')}".encode()
        return {"Authorization": f"Basic {base64.b64encode(pair).decode()}"}
    return {}


class RawClient:
    """GET pages and POST objects to one API server; safe to share between threads."""

    def __init__(self, kubeconfig: str, context: str | None = None) -> None:
        path = Path(kubeconfig).expanduser()
        doc = yaml.safe_load(path.read_text()) or {}
        ctx = _named(doc.get("contexts"), context or doc.get("current-context", ""), "context")
        cluster = _named(doc.get("clusters"), ctx.get("cluster", ""), "cluster")
        user = _named(doc.get("users"), ctx.get("user", ""), "user") if ctx.get("user") else {}
        url = urlsplit(cluster["server"])
        if url.scheme != "https" or not url.hostname:
            raise RawError(f"the raw baseline speaks https only, not {cluster['server']}")
        self.host, self.port = url.hostname, url.port or 443
        self.prefix = url.path.rstrip("/")
        self._ssl = _tls(cluster, user, path.parent)
        self._headers = {"Accept": "application/json", **_auth_headers(user, path.parent)}
        self._idle: deque[http.client.HTTPSConnection] = deque()  # append/pop: thread-safe

    def _connection(self, fresh: bool) -> http.client.HTTPSConnection:
        if not fresh:
            try:
                return self._idle.pop()  # the most recently used: the likeliest still open
            except IndexError:
                pass
        return http.client.HTTPSConnection(self.host, self.port, context=self._ssl, timeout=60)

    def request(
        self, method: str, path: str, query: dict[str, Any] | None = None, body: Any = None
    ) -> tuple[int, Any]:
        """(status, decoded body); 429/503 are waited out (Retry-After).  A kept-alive
        connection the server closed while idle (between the benchmark's steps) is
        replaced by a new one, and the other idle ones, as old, are dropped."""
        url = self.prefix + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else orjson.dumps(body)
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        fresh = False
        for _ in range(ATTEMPTS):
            conn = self._connection(fresh)
            try:
                conn.request(method, url, body=data, headers=headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                if fresh:
                    raise  # a new connection failed: not a stale one
                self.close()
                fresh = True
                continue
            if resp.will_close:
                conn.close()
            else:
                self._idle.append(conn)
            if resp.status in RETRY_STATUSES:
                time.sleep(float(resp.getheader("Retry-After") or 1))
                continue
            try:
                return resp.status, orjson.loads(raw) if raw else {}
            except orjson.JSONDecodeError:
                raise RawError(f"{method} {path}: {resp.status} {raw[:200]!r}") from None
        raise RawError(f"{method} {path}: still refused after {ATTEMPTS} attempts")

    def list_count(self, path: str, limit: int = 500) -> int:
        """LIST a collection page by page (limit/continue); the objects are parsed and
        dropped, their number returned."""
        query: dict[str, Any] = {"limit": limit}
        count = 0
        while True:
            status, page = self.request("GET", path, query)
            if status != 200:
                raise RawError(f"GET {path}: {status} {page.get('message', '')}")
            count += len(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return count
            query["continue"] = token

    def create(self, path: str, obj: dict[str, Any]) -> bool:
        """POST one object: True when created, False when it exists already."""
        status, out = self.request("POST", path, {"fieldManager": FIELD_MANAGER}, obj)
        if status == 409:
            return False
        if status not in (200, 201, 202):
            raise RawError(f"POST {path}: {status} {out.get('message', '')}")
        return True

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
