"""Verify: a normalized diff of the source (live, or as a backup recorded it) and the
target, after the restore's own transforms, so only unintended differences are drift.

run.run_verify is the entry point; policy.py holds the normalization tables.
"""

from migrate.verify.normalize import Transforms
from migrate.verify.results import ObjectResult, VerifyReport
from migrate.verify.run import VerifyOptions, run_verify

__all__ = ["ObjectResult", "Transforms", "VerifyOptions", "VerifyReport", "run_verify"]
