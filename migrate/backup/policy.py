"""What only a backup leaves out.  The resource types every step leaves out are one
table in migrate.transform.exclusions (verify reads it too), with the per-object label
that keeps an object out of a backup, which the volume step reads too."""

from __future__ import annotations

from migrate.transform.exclusions import EXCLUDE_LABEL

__all__ = ["EXCLUDE_LABEL"]
