"""Where a run connects: the source and target kubeconfigs and the bucket(s).

A playbook shipped in the repository names no cluster or bucket; they come from the
command line or the environment, so the same file runs on a laptop and in CI.  Each
setting resolves on its own: the flag given on the command line, else the playbook's
value (after `--set`), else the variable (precedence: flags > --set > playbook >
environment > defaults):

  source kubeconfig/context  spec.source.*  --source-kubeconfig/--source-context
                             KUBE_MIGRATE_SOURCE_KUBECONFIG / KUBE_MIGRATE_SOURCE_CONTEXT
  target kubeconfig/context  spec.target.*  --target-* / KUBE_MIGRATE_TARGET_*
  bucket url                 spec.bucket.url  --bucket  KUBE_MIGRATE_BUCKET
  bucket endpoint            spec.bucket.endpoint  --s3-endpoint  KUBE_MIGRATE_S3_ENDPOINT
  bucket region/profile/pathStyle   spec.bucket.*  --s3-region/--s3-profile/--s3-path-style
  bucket readOnly            spec.bucket.readOnly OR --read-only-bucket (either makes it so)
  bucket sse/kmsKeyId        spec.bucket.*  --s3-sse/--s3-kms-key-id
                             KUBE_MIGRATE_S3_SSE / KUBE_MIGRATE_S3_KMS_KEY_ID
  bucket encryption key      spec.bucket.encryptionKeyFile  --encryption-key-file
  target-side bucket         spec.targetBucket.*, field by field over the bucket's; its url
                             also from --target-bucket / KUBE_MIGRATE_TARGET_BUCKET

(Region and credentials left unset fall to the store's AWS_* defaults.)  A
`spec.targetBucket` field the playbook sets applies to the target side over the `--s3-*`
flags (they set the bucket's).  A setting is required
only when a step needs it, so a disaster-recovery playbook needs no source cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

from migrate.errors import PlaybookError
from migrate.playbook.model import Playbook


@dataclass(frozen=True)
class ClusterEndpoint:
    kubeconfig: str | None = None  # absolute path
    context: str | None = None


@dataclass(frozen=True)
class BucketEndpoint:
    url: str
    endpoint: str | None = None
    region: str | None = None
    profile: str | None = None
    path_style: bool | None = None
    read_only: bool = False
    encryption_key_file: str | None = None  # absolute path of the tarball's AES-256 key
    sse: str | None = None  # S3 server-side encryption: AES256 or aws:kms
    kms_key_id: str | None = None

    def open_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of migrate.store.open_bucket()."""
        return {
            "bucket": self.url,
            "s3_endpoint": self.endpoint,
            "s3_region": self.region,
            "s3_profile": self.profile,
            "s3_path_style": self.path_style,
            "read_only_bucket": self.read_only,
            "s3_sse": self.sse,
            "s3_kms_key_id": self.kms_key_id,
        }


@dataclass(frozen=True)
class Endpoints:
    source: ClusterEndpoint
    target: ClusterEndpoint
    bucket: BucketEndpoint | None  # where backup writes
    target_bucket: BucketEndpoint | None  # what waitForSync, restore, verify read (default: bucket)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Endpoints:
        def bucket(b: Any) -> BucketEndpoint | None:
            return BucketEndpoint(**b) if b else None

        return cls(
            source=ClusterEndpoint(**d["source"]),
            target=ClusterEndpoint(**d["target"]),
            bucket=bucket(d.get("bucket")),
            target_bucket=bucket(d.get("target_bucket")),
        )


def needs(pb: Playbook) -> dict[str, list[str]]:
    """Which steps need the source cluster, the target cluster and the bucket."""
    out: dict[str, list[str]] = {"source": [], "target": [], "bucket": []}
    from_backup = pb.verify.from_backup
    for step in pb.steps:
        sides = {
            "preflight": ("source", "target"),
            "backup": ("source", "bucket"),
            "waitForSync": ("bucket",),
            "restore": ("target", "bucket"),
            "precopy": ("source", "target", "bucket"),
            "cutover": ("source", "target", "bucket"),
            "waitReady": ("target",),
            "cleanup": ("target", "bucket"),
            "verify": ("target", "bucket") if from_backup else ("source", "target"),
            "scale": (str(step.options.get("side")),),
        }[step.name]
        for side in sides:
            out[side].append(step.label)
    return out


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None and v != ""), None)


def _abs(path: str | None) -> str | None:
    return os.path.abspath(os.path.expanduser(path)) if path else None


def resolve_endpoints(
    pb: Playbook,
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] = os.environ,
) -> Endpoints:
    """The effective clusters and buckets of a run; PlaybookError names a missing one.

    `flags` holds the command's option values by their click names (source_kubeconfig,
    source_context, target_kubeconfig, target_context, bucket, s3_endpoint, s3_region,
    s3_profile, s3_path_style, read_only_bucket, target_bucket, s3_sse, s3_kms_key_id);
    None means not given.
    """
    flags = flags or {}
    needed = needs(pb)
    clusters: dict[str, ClusterEndpoint] = {}
    for side in ("source", "target"):
        own = pb.section(side)
        up = side.upper()
        clusters[side] = ClusterEndpoint(
            kubeconfig=_abs(
                _first(
                    flags.get(f"{side}_kubeconfig"),
                    own.get("kubeconfig"),
                    env.get(f"KUBE_MIGRATE_{up}_KUBECONFIG"),
                )
            ),
            context=_context(own, flags, env, side),
        )
        if needed[side] and not clusters[side].kubeconfig:
            raise PlaybookError(
                f"{pb.path}: spec.{side}.kubeconfig: no {side} kubeconfig, "
                f"and steps {', '.join(needed[side])} need the {side} cluster",
                hint=f"set spec.{side}.kubeconfig, pass --{side}-kubeconfig, "
                f"or export KUBE_MIGRATE_{up}_KUBECONFIG",
            )
    bucket = _bucket(pb, flags, env)
    if needed["bucket"] and bucket is None:
        raise PlaybookError(
            f"{pb.path}: spec.bucket.url: no bucket, "
            f"and steps {', '.join(needed['bucket'])} need one",
            hint="set spec.bucket.url, pass --bucket, or export KUBE_MIGRATE_BUCKET "
            "(s3://bucket/prefix or file:///dir)",
        )
    return Endpoints(
        clusters["source"], clusters["target"], bucket, _target_bucket(pb, bucket, flags, env)
    )


def _context(
    own: Mapping[str, Any], flags: Mapping[str, Any], env: Mapping[str, str], side: str
) -> str | None:
    """--X-context, else the playbook's, else the variable; but a kubeconfig given on the
    command line takes its own current context rather than the playbook's (which names a
    context of the playbook's kubeconfig)."""
    if flags.get(f"{side}_context"):
        return str(flags[f"{side}_context"])
    if flags.get(f"{side}_kubeconfig"):
        return None
    found = _first(own.get("context"), env.get(f"KUBE_MIGRATE_{side.upper()}_CONTEXT"))
    return str(found) if found is not None else None


def _bucket(
    pb: Playbook, flags: Mapping[str, Any], env: Mapping[str, str]
) -> BucketEndpoint | None:
    own = pb.section("bucket")
    url = _first(flags.get("bucket"), own.get("url"), env.get("KUBE_MIGRATE_BUCKET"))
    if url is None:
        return None
    return BucketEndpoint(
        url=str(url),
        endpoint=_first(
            flags.get("s3_endpoint"), own.get("endpoint"), env.get("KUBE_MIGRATE_S3_ENDPOINT")
        ),
        region=_first(flags.get("s3_region"), own.get("region")),
        profile=_first(flags.get("s3_profile"), own.get("profile")),
        path_style=_first(flags.get("s3_path_style"), own.get("pathStyle")),
        read_only=bool(own.get("readOnly")) or bool(flags.get("read_only_bucket")),
        encryption_key_file=_first(
            _abs(flags.get("encryption_key_file")), own.get("encryptionKeyFile")
        ),
        sse=_first(flags.get("s3_sse"), own.get("sse"), env.get("KUBE_MIGRATE_S3_SSE")),
        kms_key_id=flags.get("s3_kms_key_id")  # --s3-sse comes with its own key id, if any
        if flags.get("s3_sse")
        else _first(
            flags.get("s3_kms_key_id"), own.get("kmsKeyId"), env.get("KUBE_MIGRATE_S3_KMS_KEY_ID")
        ),
    )


def _target_bucket(
    pb: Playbook,
    bucket: BucketEndpoint | None,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
) -> BucketEndpoint | None:
    own = pb.section("targetBucket")
    url = _first(flags.get("target_bucket"), own.get("url"), env.get("KUBE_MIGRATE_TARGET_BUCKET"))
    if url is None:
        if own:
            raise PlaybookError(
                f"{pb.path}: spec.targetBucket.url: targetBucket has no url",
                hint="set spec.targetBucket.url, pass --target-bucket, "
                "or export KUBE_MIGRATE_TARGET_BUCKET",
            )
        return bucket
    base = bucket or BucketEndpoint(url=str(url))
    fields = {
        "endpoint": own.get("endpoint"),
        "region": own.get("region"),
        "profile": own.get("profile"),
        "path_style": own.get("pathStyle"),
        "read_only": own.get("readOnly"),
        "encryption_key_file": own.get("encryptionKeyFile"),
        "sse": own.get("sse"),
        "kms_key_id": own.get("kmsKeyId"),
    }
    out = replace(base, url=str(url), **{k: v for k, v in fields.items() if v is not None})
    if flags.get("read_only_bucket"):
        out = replace(out, read_only=True)
    if flags.get("encryption_key_file"):
        out = replace(out, encryption_key_file=_abs(flags["encryption_key_file"]))
    return out
