"""The settings of a live migration's steps (spec.precopy, spec.cutover): how many
increments the pre-copy takes, how long the cut-over waits, what it checks and runs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PrecopySettings:
    passes: int  # increments after the first copy, while the source runs
    until_bytes: int | None  # stop early once an increment is smaller


@dataclass(frozen=True)
class CutoverHook:
    name: str
    command: tuple[str, ...]  # run on this machine; or, when empty:
    timeout: float  # seconds
    job: Mapping[str, Any] | None = None  # {namespace?, spec: a batch/v1 JobSpec}


@dataclass(frozen=True)
class CutoverSettings:
    stop_timeout: float  # seconds for the source's pods to be gone
    ready_timeout: float  # seconds for the target's workloads to be ready
    verify_data: bool
    hooks: tuple[CutoverHook, ...]
