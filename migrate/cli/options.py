"""Flags shared by many commands, declared once so every verb spells them the same way.

Single-cluster verbs take `--kubeconfig/--context` (kubectl's habit); two-cluster verbs
take `--source-*` and `--target-*`, each also read from a KUBE_MIGRATE_* variable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from migrate.cluster import Cluster, ClusterRef

F = TypeVar("F", bound=Callable[..., Any])


def _apply(f: F, decorators: list[Callable[[F], F]]) -> F:
    for dec in reversed(decorators):
        f = dec(f)
    return f


def client_options(f: F) -> F:
    """Client-side throttling, like client-go's --kube-api-qps/--kube-api-burst."""
    return _apply(
        f,
        [
            click.option(
                "--qps",
                type=float,
                default=50.0,
                show_default=True,
                help="Client-side requests per second to each API server.",
            ),
            click.option(
                "--burst",
                type=int,
                default=100,
                show_default=True,
                help="Requests allowed in a burst above --qps.",
            ),
        ],
    )


def cluster_options(f: F) -> F:
    """`--kubeconfig/--context` for verbs that talk to one cluster."""
    return _apply(
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
    for side in ("source", "target"):
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
    return _apply(f, [*opts, client_options])


def connect(
    kubeconfig: str | None,
    context: str | None,
    *,
    name: str | None = None,
    qps: float = 50.0,
    burst: int = 100,
    pool_size: int = 16,
) -> Cluster:
    """Build a Cluster from flag values (raises KubeconfigError on a bad file/context)."""
    return Cluster(
        ClusterRef(kubeconfig, context), name=name, qps=qps, burst=burst, pool_size=pool_size
    )
