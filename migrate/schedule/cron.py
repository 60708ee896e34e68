"""Check a CronJob schedule string before anything is installed.

The API server parses `spec.schedule` with robfig/cron's standard parser: five fields
(minute hour day-of-month month day-of-week) or one of the @ descriptors; a time zone goes
in `spec.timeZone`, never in the string. Checking it here turns a typo into a one-line
error naming the field, instead of a 422 after the ServiceAccount and RBAC were created.
"""

from __future__ import annotations

from migrate.errors import UsageError

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# field name, lowest, highest, names accepted in place of numbers (robfig/cron's)
FIELDS: tuple[tuple[str, int, int, tuple[str, ...]], ...] = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ()),
    ("month", 1, 12, MONTHS),
    ("day of week", 0, 6, DAYS),
)
# the descriptors the standard parser knows (@every is robfig's extension: k8s refuses it)
DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
HINT = 'five fields "MIN HOUR DOM MON DOW" (e.g. "0 */6 * * *") or @hourly/@daily/@weekly...'


def check_schedule(text: str) -> str:
    """The schedule, stripped; UsageError naming what is wrong otherwise."""
    s = " ".join(text.split())
    if s.startswith("@"):
        if s.lower() not in DESCRIPTORS:
            raise UsageError(f"schedule {text!r}: unknown descriptor {s!r}", hint=HINT)
        return s
    if s.upper().startswith(("TZ=", "CRON_TZ=")):
        raise UsageError(
            f"schedule {text!r}: a time zone does not go in the schedule",
            hint="pass --time-zone Europe/Berlin (the CronJob's spec.timeZone)",
        )
    parts = s.split(" ")
    if len(parts) != 5:
        raise UsageError(f"schedule {text!r}: {len(parts)} fields, not 5", hint=HINT)
    for part, (name, lo, hi, names) in zip(parts, FIELDS, strict=True):
        for item in part.split(","):
            problem = _item_problem(item, lo, hi, names)
            if problem:
                raise UsageError(f"schedule {text!r}: {name} {item!r}: {problem}", hint=HINT)
    return s


def _item_problem(item: str, lo: int, hi: int, names: tuple[str, ...]) -> str | None:
    rng, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) == 0):
        return "the step after / must be a positive number"
    if rng in ("*", "?"):
        return None
    start, dash, end = rng.partition("-")
    values = [start, end] if dash else [start]
    for v in values:
        n = _value(v, lo, names)
        if n is None:
            return f"not a number{' or name' if names else ''}"
        if not lo <= n <= hi and not (hi == 6 and n == 7):  # 7 is Sunday too
            return f"out of range {lo}-{hi}"
    if dash and _value(start, lo, names) > _value(end, lo, names):  # type: ignore[operator]
        return "the range's start is after its end"
    return None


def _value(v: str, lo: int, names: tuple[str, ...]) -> int | None:
    if v.isdigit():
        return int(v)
    if v.lower() in names:
        return names.index(v.lower()) + lo
    return None
