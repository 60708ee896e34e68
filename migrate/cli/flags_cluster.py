"""The cluster flags, declared once: `--kubeconfig/--context` for verbs that talk to one
cluster (kubectl's habit), `--source-*`/`--target-*` for verbs that talk to both (each
also read from a KUBE_MIGRATE_* variable), and the client throttling both take.

Each group is a click decorator and a typed dataclass (migrate.cli.binding) with the
same field names; the Cluster client is imported only when a command connects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

import click

from migrate.cli.binding import F, Flags, apply_options

if TYPE_CHECKING:
    from migrate.cluster import Cluster

SIDES = ("source", "target")


def client_options(f: F) -> F:
    """Client-side throttling, like client-go's --kube-api-qps/--kube-api-burst; by default
    none fixed: the client adapts to the server's 429s (cluster/ratelimit.py)."""
    return apply_options(
        f,
        [
            click.option(
                "--qps",
                type=click.FloatRange(min=0),
                default=None,
                metavar="N",
                help="Fixed client-side requests per second to each API server; 0: no "
                "limit.  Default: none fixed, backing off when the server answers 429 "
                "(priority and fairness), honouring its Retry-After.",
            ),
            click.option(
                "--burst",
                type=int,
                default=100,
                show_default=True,
                metavar="N",
                help="Requests allowed in a burst above a fixed --qps.",
            ),
        ],
    )


def cluster_options(f: F) -> F:
    """`--kubeconfig/--context` for verbs that talk to one cluster."""
    return apply_options(
        f,
        [
            click.option(
                "--kubeconfig",
                metavar="FILE",
                envvar="KUBE_MIGRATE_KUBECONFIG",
                help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
            ),
            click.option(
                "--context",
                metavar="NAME",
                envvar="KUBE_MIGRATE_CONTEXT",
                help="Kubeconfig context (default: its current-context).",
            ),
            client_options,
        ],
    )


def source_target_options(f: F) -> F:
    """`--source-*` and `--target-*` for verbs that talk to both clusters."""
    opts: list[Callable[[F], F]] = []
    for side in SIDES:
        up = side.upper()
        opts += [
            click.option(
                f"--{side}-kubeconfig",
                metavar="FILE",
                envvar=f"KUBE_MIGRATE_{up}_KUBECONFIG",
                help=f"Kubeconfig of the {side} cluster [env KUBE_MIGRATE_{up}_KUBECONFIG].",
            ),
            click.option(
                f"--{side}-context",
                metavar="NAME",
                envvar=f"KUBE_MIGRATE_{up}_CONTEXT",
                help=f"Context in the {side} kubeconfig [env KUBE_MIGRATE_{up}_CONTEXT].",
            ),
        ]
    return apply_options(f, [*opts, client_options])


def connect(
    kubeconfig: str | None,
    context: str | None,
    *,
    name: str | None = None,
    qps: float | None = None,
    burst: int = 100,
    pool_size: int = 16,
) -> Cluster:
    """Build a Cluster from flag values (raises KubeconfigError on a bad file/context)."""
    from migrate.cluster import Cluster, ClusterRef

    return Cluster(
        ClusterRef(kubeconfig, context), name=name, qps=qps, burst=burst, pool_size=pool_size
    )


@dataclass(frozen=True)
class ClientFlags(Flags):
    """client_options: `--qps`, `--burst`."""

    qps: float | None = None
    burst: int = 100


@dataclass(frozen=True)
class ClusterFlags(Flags):
    """cluster_options: `--kubeconfig`, `--context` and the client flags."""

    kubeconfig: str | None
    context: str | None
    client: ClientFlags

    @property
    def given(self) -> bool:
        """A kubeconfig or a context was named (by a flag or its variable)."""
        return bool(self.kubeconfig or self.context)

    def connect(self, *, name: str | None = None, pool_size: int = 16) -> Cluster:
        """The cluster these flags name (raises KubeconfigError on a bad file/context)."""
        return connect(
            self.kubeconfig,
            self.context,
            name=name,
            qps=self.client.qps,
            burst=self.client.burst,
            pool_size=pool_size,
        )


@dataclass(frozen=True)
class SourceTargetFlags(Flags):
    """source_target_options: `--source-kubeconfig/--source-context`,
    `--target-kubeconfig/--target-context` and the client flags both sides share."""

    source: ClusterFlags
    target: ClusterFlags

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        client = ClientFlags.from_params(params)
        source, target = (
            ClusterFlags(params.pop(f"{side}_kubeconfig"), params.pop(f"{side}_context"), client)
            for side in SIDES
        )
        return cls(source, target)
