"""Logging to stderr, as plain lines for people or JSON lines for log collectors.

stdout is reserved for data; everything a run says about itself goes here, with
credentials redacted (migrate.runlog.Redact), at every level including --debug.
"""

from __future__ import annotations

import json
import logging
import sys
import time

from migrate import runlog
from migrate.runlog import Redact

NOTICE = runlog.NOTICE  # between INFO and WARNING: a run's progress, shown by default


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:  # exc_text: the traceback as Redact left it
            doc["exc"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(doc)


def setup(verbosity: int, debug: bool, fmt: str) -> None:
    """-v: info, -vv or --debug: debug; default: notices (progress) and warnings."""
    level = logging.DEBUG if debug or verbosity >= 2 else logging.INFO if verbosity else NOTICE
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JSONFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(message)s", "%H:%M:%S")
        )
    handler.setLevel(level)
    handler.addFilter(Redact())  # --debug shows library request logs: never credentials
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    # migrate.* records are made down to INFO whatever the verbosity: backup and restore
    # keep them in their -logs.gz files; the stderr handler shows only what -v asks for
    logging.getLogger("migrate").setLevel(min(level, logging.INFO))
    # third-party libraries stay quiet unless --debug
    for noisy in ("urllib3", "botocore", "boto3", "kubernetes"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
