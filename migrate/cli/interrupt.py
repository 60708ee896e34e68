"""What the Ctrl-C (or SIGTERM) message tells the user to do next: each command says
how *it* continues, once it knows (restore: its name and backup; run: the run), and a
command that cannot continue (backup, verify, preflight) says to rerun it."""

from __future__ import annotations

RERUN = "nothing to resume: rerun the command (it starts again from the beginning)"
_hint = {"text": RERUN}


def set_hint(text: str) -> None:
    """The hint printed if this process is interrupted from now on."""
    _hint["text"] = text


def hint() -> str:
    return _hint["text"]
