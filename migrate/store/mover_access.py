"""What a volume-data mover pod needs to reach the bucket itself: the endpoint, the
bucket, the prefix of its kopia repository and the credentials this process uses.

The mover (kopia in a pod on the cluster) writes the data straight into the bucket; the
bytes never pass through kube-migrate.  Only store/ knows how boto3 resolved the
credentials (flags, profile, environment, instance role), so it hands them out here, as
an object whose repr hides the secrets; the caller puts them in a short-lived Secret.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from migrate.errors import UsageError
from migrate.store.base import Store
from migrate.store.s3 import S3Store

KOPIA_DIR = "kopia"  # Velero's: <prefix>/kopia/<namespace>/ is one kopia repository


@dataclass(frozen=True)
class MoverAccess:
    bucket: str
    prefix: str  # the bucket prefix of the backup location, "" or ending with "/"
    endpoint: str  # host[:port], "" for AWS's own endpoint
    disable_tls: bool
    region: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    session_token: str = field(default="", repr=False)

    def repository_prefix(self, namespace: str) -> str:
        """The kopia repository of one source namespace, as Velero lays it out."""
        return f"{self.prefix}{KOPIA_DIR}/{namespace}/"

    @property
    def loopback(self) -> bool:
        """The endpoint is this machine's loopback: only a host-network pod reaches it."""
        host = urlsplit(f"//{self.endpoint}").hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def env(self) -> dict[str, str]:
        """The mover's environment (secret values: goes into a Secret, never a pod spec)."""
        env = {
            "KM_S3_BUCKET": self.bucket,
            "KM_S3_ENDPOINT": self.endpoint,
            "KM_S3_REGION": self.region,
            "KM_S3_DISABLE_TLS": "1" if self.disable_tls else "",
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


def mover_access(store: Store) -> MoverAccess:
    """The bucket as a mover pod reaches it; UsageError for a bucket it cannot reach."""
    if not isinstance(store, S3Store):
        raise UsageError(
            f"volume data needs an S3 bucket that the clusters' nodes can reach, not {store.url}",
            hint="use an s3:// bucket (--bucket s3://..., --s3-endpoint), "
            "or move objects only with --volumes none",
        )
    opts = store.options
    endpoint = opts.resolved_endpoint() or ""
    parts = urlsplit(endpoint) if endpoint else None
    host = parts.netloc.rsplit("@", 1)[-1] if parts else ""
    client: Any = store.client
    creds = client._request_signer._credentials  # as boto3 resolved them to sign
    if creds is None:
        raise UsageError(
            "no AWS credentials for the bucket: the mover pods need them",
            hint="set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-profile",
        )
    frozen = creds.get_frozen_credentials()
    return MoverAccess(
        bucket=store.url.bucket,
        prefix=f"{store.url.prefix}/" if store.url.prefix else "",
        endpoint=host,
        disable_tls=bool(parts and parts.scheme == "http"),
        region=opts.resolved_region(),
        access_key=frozen.access_key,
        secret_key=frozen.secret_key,
        session_token=frozen.token or "",
    )
