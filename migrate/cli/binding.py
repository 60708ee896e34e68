"""Typed command options: click's flag values bound to dataclass fields in one place.

click hands a command's values over as keyword arguments; `bind(Args)` turns them into
one `Args` dataclass (a `Command`) before the command's body runs, so the body reads
`args.bucket.s3_endpoint`, which mypy checks, and never `kw["s3_endpoint"]`.  A field is
bound to the click parameter of the same name (its `dest`: `--from-backup` declared as
`"backup"` fills a field `backup`); a field whose type is itself a `Flags` group (the
bucket, cluster, scope... flags of migrate.cli.options) takes that group's parameters.
A parameter no field takes is a bug, refused at the first run (tests run every command).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields
from typing import Any, Self, TypeVar, get_type_hints

F = TypeVar("F", bound=Callable[..., Any])


def apply_options(f: F, decorators: list[Callable[[F], F]]) -> F:
    """Apply click decorators in the order they are listed (the first is outermost)."""
    for dec in reversed(decorators):
        f = dec(f)
    return f


class Flags:
    """A dataclass of flag values; subclasses are `@dataclass(frozen=True)`."""

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Self:
        """Remove this group's values from click's `params` and build the group.  A field
        with a default may be missing from `params` (a command without that flag)."""
        hints = get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]  # subclasses are dataclasses
            kind = hints[f.name]
            if isinstance(kind, type) and issubclass(kind, Flags):
                values[f.name] = kind.from_params(params)
            elif f.name in params:
                values[f.name] = params.pop(f.name)
        return cls(**values)

    def validate(self) -> None:
        """Raise migrate.errors.UsageError (with a hint) on a bad value or combination;
        pure: reads no file, opens no connection."""


class Command(Flags):
    """All the options of one command; `bind` calls its `validate()` before the command
    reads or writes anything."""


C = TypeVar("C", bound=Command)


def bind_params(cls: type[C], params: dict[str, Any]) -> C:
    """`cls` built from all of a command's click `params` (every one must be taken)."""
    left = dict(params)
    args = cls.from_params(left)
    if left:
        raise TypeError(f"{cls.__name__} has no field for the flags {sorted(left)}")
    return args


def bind(cls: type[C]) -> Callable[[Callable[[C], None]], Callable[..., None]]:
    """Decorate a command's body `def body(args: cls) -> None` (under its click
    decorators): click's values become `cls`, validated, then the body runs."""

    def decorate(body: Callable[[C], None]) -> Callable[..., None]:
        @functools.wraps(body)
        def command(**params: Any) -> None:
            args = bind_params(cls, params)
            args.validate()
            body(args)

        return command

    return decorate
