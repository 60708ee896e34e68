"""Playbooks: the file format of `kube-migrate run` (kube-migrate.io/v1alpha1, Playbook).

This package reads, overrides (`--set`), validates and types a playbook, resolves where
the run connects, and keeps the run journal for `--resume`.  It runs nothing: the runner
(a step-layer module) executes the steps, so this layer imports no cluster-using step.
"""

from migrate.playbook.endpoints import BucketEndpoint, ClusterEndpoint, Endpoints, resolve_endpoints
from migrate.playbook.load import load_playbook, playbook_from_document
from migrate.playbook.model import (
    BackupSettings,
    Gates,
    Playbook,
    RestoreSettings,
    ScaleSettings,
    Step,
    VerifySettings,
    WaitForSyncSettings,
)
from migrate.playbook.rules import STEP_NAMES, STEP_ORDER
from migrate.playbook.run_dirs import list_runs, new_run_name, state_root
from migrate.playbook.schema import API_VERSION, KIND, schema
from migrate.playbook.state import RunState, StepState

__all__ = [
    "API_VERSION",
    "KIND",
    "STEP_NAMES",
    "STEP_ORDER",
    "BackupSettings",
    "BucketEndpoint",
    "ClusterEndpoint",
    "Endpoints",
    "Gates",
    "Playbook",
    "RestoreSettings",
    "RunState",
    "ScaleSettings",
    "Step",
    "StepState",
    "VerifySettings",
    "WaitForSyncSettings",
    "list_runs",
    "load_playbook",
    "new_run_name",
    "playbook_from_document",
    "resolve_endpoints",
    "schema",
    "state_root",
]
