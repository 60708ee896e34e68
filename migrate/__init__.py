"""kube-migrate: move a Kubernetes cluster's objects to another cluster, with proof.

The package is laid out by step: ``preflight/``, ``backup/``, ``sync/``, ``restore/``,
``verify/`` and ``report/`` do the work; ``cluster/`` and ``store/`` are the only doors
to the Kubernetes API and to the bucket; ``cli/`` turns flags into calls.
"""

__version__ = "0.1.0"
