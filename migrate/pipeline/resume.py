"""Start a run, or resume one: find it (this machine's journal, else the copy in the
bucket next to its restore) and hold it to what it was started with.

A resumed run uses the playbook, `--set` values and endpoints it journaled; a flag that
would change them is refused (exit 2) rather than silently ignored.  Flags equal to the
journaled values are accepted (`--bucket` is how another machine finds the run), and
so are a kubeconfig or key file given where the journaled path does not exist on this
machine (a resume from another machine or pod has its own paths).

The run state is copied to `restores/<restore>/journal/run-<run>.json` after every save
when the playbook restores into a writable bucket (not in --dry-run); a read-only bucket
keeps it on this machine only.

`flags` below are the command-line values by their option names (source_kubeconfig,
bucket, s3_endpoint, ...; None: not given), as playbook.resolve_endpoints takes them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from migrate.errors import MigrateError, UsageError
from migrate.pipeline.context import Context, open_bucket
from migrate.playbook import (
    BucketEndpoint,
    ClusterEndpoint,
    Endpoints,
    Playbook,
    RunState,
    load_playbook,
    resolve_endpoints,
)
from migrate.playbook.endpoints import needs
from migrate.playbook.state import journal_path
from migrate.restore.bucket_journal import prefix
from migrate.runlog import NOTICE
from migrate.store import Store

log = logging.getLogger(__name__)

# flag -> (Endpoints side attribute, field): what the flag sets in a run's endpoints.
FLAG_FIELDS = {
    "source_kubeconfig": ("source", "kubeconfig"),
    "source_context": ("source", "context"),
    "target_kubeconfig": ("target", "kubeconfig"),
    "target_context": ("target", "context"),
    "bucket": ("bucket", "url"),
    "target_bucket": ("target_bucket", "url"),
    "s3_endpoint": ("bucket", "endpoint"),
    "s3_region": ("bucket", "region"),
    "s3_profile": ("bucket", "profile"),
    "s3_path_style": ("bucket", "path_style"),
    "s3_sse": ("bucket", "sse"),
    "s3_kms_key_id": ("bucket", "kms_key_id"),
    "encryption_key_file": ("bucket", "encryption_key_file"),
    "read_only_bucket": ("bucket", "read_only"),
}
# Paths that may differ on another machine: taken when the journaled one is not here.
LOCAL_PATHS = frozenset({"source_kubeconfig", "target_kubeconfig", "encryption_key_file"})


def new_run(
    playbook: str, overrides: Sequence[str], flags: Mapping[str, Any]
) -> tuple[RunState, Playbook, Endpoints]:
    """A new run of `playbook` (with --set `overrides`), journaled from now on."""
    pb = load_playbook(playbook, tuple(overrides))
    endpoints = resolve_endpoints(pb, flags)
    return RunState.create(pb, endpoints=endpoints), pb, endpoints


def resume_run(
    run: str, flags: Mapping[str, Any], where: BucketEndpoint | None
) -> tuple[RunState, Playbook, Endpoints]:
    """Run `run` as journaled (here, else adopted from the bucket `where`), with this
    machine's paths where the journaled ones are not here."""
    find_in_bucket(run, where)
    state = RunState.resume(run)
    pb = state.playbook()
    endpoints = _endpoints_here(state, pb, flags)
    state.endpoints = endpoints.as_dict()  # with this machine's paths, if they differ
    return state, pb, endpoints


def peek_run(
    run: str, flags: Mapping[str, Any], where: BucketEndpoint | None
) -> tuple[Playbook, Endpoints]:
    """What resuming `run` here would use (its playbook, and endpoints with this machine's
    paths), from this machine's journal or else the bucket's copy, without adopting it:
    `run --resume RUN --in-cluster` hands the run to a pod, which adopts it."""
    if journal_path(run).exists():
        state = RunState.load(run)
    else:
        store = open_bucket(where, read_only=True) if where is not None else None
        key = _bucket_key(store, run) if store is not None else None
        if store is None or key is None:
            raise UsageError(
                f"no run named {run!r} here{f' nor in {store.url}' if store else ''}",
                hint="pass the --bucket (or --target-bucket) the run restores into",
            )
        state = RunState.from_text(run, store.get(key))
    state.check_resumable()
    pb = state.playbook()
    return pb, _endpoints_here(state, pb, flags)


def _endpoints_here(state: RunState, pb: Playbook, flags: Mapping[str, Any]) -> Endpoints:
    """The run's journaled endpoints, held to the flags given, with this machine's paths."""
    journaled = state.resolved_endpoints() or resolve_endpoints(pb, flags)
    return local_paths(check_flags(journaled, flags, state.run), pb, state.run)


def state_key(restore: str, run: str) -> str:
    return f"{prefix(restore)}run-{run}.json"


def mirror_to(state: RunState, pb: Playbook, store: Store) -> None:
    """Copy the run state to the bucket after every save (and now)."""
    key = state_key(pb.restore_name(state.run), state.run)

    def put(text: bytes) -> None:
        try:
            store.put(key, text)
        except MigrateError as exc:  # the local journal is kept; resume works here
            log.warning("run %s: cannot copy its state to %s: %s", state.run, store.url, exc)

    state.mirror = put
    state.save()


def mirror_run(ctx: Context) -> None:
    """Mirror the run to the target's bucket when it restores there (--resume from
    anywhere); not in a dry run, nor to a read-only bucket."""
    bucket = ctx.endpoints.target_bucket or ctx.endpoints.bucket
    if ctx.pb.has_step("restore") and not ctx.dry_run and bucket and not bucket.read_only:
        mirror_to(ctx.state, ctx.pb, ctx.store("target"))


def find_in_bucket(run: str, where: BucketEndpoint | None) -> RunState | None:
    """The run's state from the bucket `where` (--target-bucket, else --bucket, or their
    variables), adopted as this machine's journal; None when there is none."""
    if where is None or journal_path(run).exists():
        return None
    store = open_bucket(where, read_only=True)
    key = _bucket_key(store, run)
    if key is None:
        return None
    log.log(NOTICE, "run %s: state found in %s/%s", run, store.url, key)
    return RunState.adopt(run, store.get(key))


def _bucket_key(store: Store, run: str) -> str | None:
    """Where the bucket keeps run `run`'s state (next to its restore), if it does."""
    candidates = [run, *(p for p in store.list_prefixes("restores/") if p != run)]
    return next((k for r in candidates if store.exists(k := state_key(r, run))), None)


def local_paths(
    endpoints: Endpoints, pb: Playbook, run: str, env: Mapping[str, str] = os.environ
) -> Endpoints:
    """A journaled kubeconfig that is not on this machine (the run began in a pod, or on
    another machine) and no flag replaced: KUBE_MIGRATE_<SIDE>_KUBECONFIG's, if set."""
    needed = needs(pb)
    for side in ("source", "target"):
        ep = getattr(endpoints, side)
        if not needed[side] or not ep.kubeconfig or os.path.exists(ep.kubeconfig):
            continue
        up = side.upper()
        here = env.get(f"KUBE_MIGRATE_{up}_KUBECONFIG")
        if not here:
            raise UsageError(
                f"run {run}'s {side} kubeconfig {ep.kubeconfig} is not on this machine",
                hint=f"pass --{side}-kubeconfig (or export KUBE_MIGRATE_{up}_KUBECONFIG)",
            )
        log.log(NOTICE, "run %s: the %s kubeconfig is %s here", run, side, here)
        here_ep = ClusterEndpoint(os.path.abspath(here), env.get(f"KUBE_MIGRATE_{up}_CONTEXT"))
        if side == "source":
            endpoints = replace(endpoints, source=here_ep)
        else:
            endpoints = replace(endpoints, target=here_ep)
    return endpoints


def check_flags(endpoints: Endpoints, flags: Mapping[str, Any], run: str) -> Endpoints:
    """Refuse flags that contradict the journaled endpoints; take local paths (above)."""
    for flag, given in flags.items():
        if given is None or flag not in FLAG_FIELDS:
            continue
        side, attr = FLAG_FIELDS[flag]
        ep = getattr(endpoints, side)
        have = getattr(ep, attr) if ep is not None else None
        value = os.path.abspath(given) if flag in LOCAL_PATHS else given
        if value == have:
            continue
        if flag in LOCAL_PATHS and ep is not None and not (have and os.path.exists(have)):
            endpoints = replace(endpoints, **{side: replace(ep, **{attr: value})})
            continue
        option = "--" + flag.replace("_", "-")
        raise UsageError(
            f"run {run} was started with {option} {have!r}; --resume continues it with the "
            f"same settings, not {value!r}",
            hint=f"drop {option} to resume the run as it was, or start a new run "
            "with `kube-migrate run PLAYBOOK ...`",
        )
    return endpoints


def refresh_journal(run: str, where: BucketEndpoint | None) -> None:
    """After a pod ran `run`: this machine's journal of it (if it keeps one) becomes the
    bucket's copy, so a later `--resume` here starts where the pod stopped."""
    path = journal_path(run)
    if where is None or not path.exists():
        return
    store = open_bucket(where, read_only=True)
    key = _bucket_key(store, run)
    if key is not None:
        path.write_bytes(store.get(key))
