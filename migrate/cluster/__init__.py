"""The only door to the Kubernetes API: kubeconfig loading, discovery, paginated
list, create/get/patch/delete, rate limiting and retries.  Nothing outside this
package imports the kubernetes client."""

from migrate.cluster.client import FIELD_MANAGER, Cluster
from migrate.cluster.config import ClusterRef
from migrate.cluster.discovery import APIResource, Discovery
from migrate.cluster.statuses import ServerVersion

__all__ = ["FIELD_MANAGER", "APIResource", "Cluster", "ClusterRef", "Discovery", "ServerVersion"]
