"""Moved to migrate.transform.skip_policy (verify reads it too); re-exported here."""

from migrate.transform.skip_policy import SKIP_RULES, SkipRule, skip_reason

__all__ = ["SKIP_RULES", "SkipRule", "skip_reason"]
