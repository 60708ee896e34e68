"""Capture a run's own log lines (never object data) so backup and restore can store
them next to their results (`<name>-logs.gz`), as Velero does; and keep credentials out
of every log line (`Redact`), ours and the libraries' (botocore, urllib3 and kubernetes
log request headers and signed URLs at debug level)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

# Between INFO and WARNING: what a run says by default about its progress (a playbook's
# steps, the backup a drill picked), shown without -v and not dressed up as a warning.
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")
REDACTED = "<redacted>"
# What a log line may carry that grants access, and how much of it to hide.  Header
# values run to the end of their quoted string or line (an Authorization value has
# spaces); query and form parameters to the next '&', quote or space.
_HEADERS = (
    "authorization",
    "proxy-authorization",
    "x-amz-security-token",
    "x-amz-credential",
    "x-amz-signature",
    "cookie",
    "set-cookie",
    "x-auth-token",
    "aws_secret_access_key",
    "aws_session_token",
    "client-key-data",
    "token",
    "password",
)
_PARAMS = ("x-amz-credential", "x-amz-signature", "x-amz-security-token", "signature")
_SECRETS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys (kubeconfig client keys), whole blocks
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        REDACTED,
    ),
    # Header: value / 'Header': b'value' / "header": "value" / header:value (signing input)
    (
        re.compile(
            r"(?i)((?:" + "|".join(map(re.escape, _HEADERS)) + r")['\"]?\s*[:=]\s*(?-i:b)?['\"]?)"
            r"(?!<redacted>)[^'\"\r\n\\&]+"
        ),
        r"\1" + REDACTED,
    ),
    (
        re.compile(r"(?i)([?&;](?:" + "|".join(map(re.escape, _PARAMS)) + r")=)[^&'\"\s]+"),
        r"\1" + REDACTED,
    ),
    # the signature botocore logs on a line of its own ("Signature:\n<hex>")
    (re.compile(r"(?i)(signature:\s*)[0-9a-f]{64}"), r"\1" + REDACTED),
    # bearer tokens and ServiceAccount JWTs wherever they appear
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1" + REDACTED),
    (re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+"), REDACTED),
)


def redact(text: str) -> str:
    """text with every credential-looking value replaced by <redacted>."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    """A handler filter: the record's message (arguments merged in) and traceback with
    credentials redacted, before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a library's bad format string: show it, still redacted
            message = f"{record.msg} {record.args}"
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class LogCapture(logging.Handler):
    """Keeps this backup's log lines for <name>-logs.gz (never object data)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []
        self.addFilter(Redact())
        self.setFormatter(logging.Formatter("time=%(asctime)s level=%(levelname)s msg=%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.lines) < 100_000:
            self.lines.append(self.format(record))


@contextmanager
def captured() -> Iterator[LogCapture]:
    """Collect migrate.* log lines for the duration of the block."""
    capture = LogCapture()
    logger = logging.getLogger("migrate")
    old_level = logger.level
    if logger.getEffectiveLevel() > logging.INFO:  # a library caller that set no level
        logger.setLevel(logging.INFO)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
