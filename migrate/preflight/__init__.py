"""Preflight: "can this cluster move there, and what will break?" answered before
anything is written.  Checks the restore plan of a source (a live cluster or a backup)
against the target: versions, API compatibility, removed APIs, CRD versions, references,
collisions, admission (webhooks, Pod Security), permissions and capacity.
"""

from migrate.preflight.context import Planned, PreflightOptions
from migrate.preflight.facts import SourceFacts, read_source_facts
from migrate.preflight.findings import CHECKS, SEVERITIES, Finding, Report
from migrate.preflight.run import run_preflight

__all__ = [
    "CHECKS",
    "SEVERITIES",
    "Finding",
    "Planned",
    "PreflightOptions",
    "Report",
    "SourceFacts",
    "read_source_facts",
    "run_preflight",
]
