"""Volume data, pure logic: which claims move and why not, the mover pod's shape, where a
restore mover goes, the size check and the repository password."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, cast

import pytest

from migrate.cluster import Cluster
from migrate.errors import PartialFailure, UsageError
from migrate.store import open_store
from migrate.store.layout import BackupKeys
from migrate.store.mover_access import MoverAccess
from migrate.transform.claims import OPT_IN, OPT_OUT, plan_claims
from migrate.volumes.hooks import Hook, pod_hook
from migrate.volumes.mover import parse_lines
from migrate.volumes.mover_pod import MoverJob, MoverSettings, command, pod_name, pod_spec
from migrate.volumes.password import repository_password
from migrate.volumes.records import VolumeCopy, velero_only
from migrate.volumes.restore import PlannedClaim, check_sizes, placements
from migrate.volumes.standby import Standbys


def claim(name: str, ns: str = "app", *, bound: bool = True, **spec: Any) -> dict[str, Any]:
    body = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        **({"volumeName": f"pv-{name}"} if bound else {}),
        **spec,
    }
    return {
        "metadata": {"name": name, "namespace": ns},
        "spec": body,
        "status": {"phase": "Bound" if bound else "Pending"},
    }


def pod(name: str, claims: dict[str, str], node: str = "n1", **notes: str) -> dict[str, Any]:
    """A running pod mounting `claims` (volume name -> claim name)."""
    return {
        "metadata": {"name": name, "namespace": "app", "annotations": notes},
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "t", "operator": "Exists"}],
            "volumes": [
                {"name": v, "persistentVolumeClaim": {"claimName": c}} for v, c in claims.items()
            ],
        },
        "status": {"phase": "Running"},
    }


def test_every_claim_gets_a_mover_or_a_reason() -> None:
    claims = [
        claim("data"),
        claim("idle"),
        claim("pending", bound=False),
        claim("raw", volumeMode="Block"),
        claim("solo", accessModes=["ReadWriteOncePod"]),
        claim("skipme"),
    ]
    pods = [
        pod("db-0", {"d": "data", "r": "raw", "s": "solo"}),
        pod("web", {"x": "skipme"}, **{OPT_OUT: "x"}),
    ]
    out = {c.name: c for c in plan_claims(claims, pods, "all")}
    assert out["data"].moves and out["data"].node == "n1" and out["data"].pod == "db-0"
    assert out["data"].tolerations == [{"key": "t", "operator": "Exists"}]
    assert out["idle"].moves and out["idle"].node == ""  # no user: the scheduler places it
    assert out["pending"].skip == "unbound"
    assert out["raw"].skip == "block" and "Block" in out["raw"].reason
    assert out["solo"].skip == "rwop-in-use"
    assert out["skipme"].skip == "excluded"
    assert [c.name for c in plan_claims(claims, pods, "all")] == sorted(out)


def test_annotated_mode_moves_only_opted_in_volumes() -> None:
    claims = [claim("a"), claim("b")]
    pods = [pod("p", {"va": "a", "vb": "b"}, **{OPT_IN: "va"})]
    out = {c.name: c.skip for c in plan_claims(claims, pods, "annotated")}
    assert out == {"a": "", "b": "not-annotated"}
    assert {c.skip for c in plan_claims(claims, pods, "none")} == {"none"}


def test_a_claim_used_on_a_simulated_node_is_reported_not_copied() -> None:
    out = plan_claims([claim("a")], [pod("p", {"v": "a"}, node="kwok-0")], "all", {"kwok-0"})
    assert out[0].skip == "simulated-node" and "kwok" in out[0].reason


ACCESS = MoverAccess("b", "pre/", "127.0.0.1:9000", True, "us-east-1", "AK", "SK")


def test_mover_pod_reads_the_claim_read_only_and_carries_no_secret() -> None:
    settings = MoverSettings("img:1", ACCESS, password="hunter2")
    job = MoverJob("backup", "app", "data", ["--user", "data"], node="n1")
    spec = pod_spec(job, "km-backup-data-abc", settings)
    # never in a backup: an increment reads its namespace's objects while movers run
    assert spec["metadata"]["labels"]["velero.io/exclude-from-backup"] == "true"
    text = repr(spec)
    assert "hunter2" not in text and "SK" not in text.replace("SKIP", "")
    c = spec["spec"]["containers"][0]
    assert c["envFrom"] == [{"secretRef": {"name": "km-backup-data-abc"}}]
    assert c["volumeMounts"][-1] == {"name": "data", "mountPath": "/mnt/data", "readOnly": True}
    assert spec["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["DAC_READ_SEARCH"]}
    assert "privileged" not in c["securityContext"]
    assert spec["spec"]["nodeName"] == "n1"
    assert spec["spec"]["hostNetwork"] is True  # the bucket is on the node's loopback
    assert "MoverAccess" in repr(ACCESS) and "SK" not in repr(ACCESS)


def test_restore_mover_writes_and_keeps_off_simulated_nodes() -> None:
    settings = MoverSettings("img:1", ACCESS, password="p")
    aff = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "z", "operator": "In", "values": ["a"]}]}
                ]
            }
        }
    }
    job = MoverJob("restore", "app", "data", [], affinity=aff, avoid_nodes=["k1", "k0"])
    spec = pod_spec(job, "x", settings)["spec"]
    assert spec["containers"][0]["volumeMounts"][-1]["readOnly"] is False
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    term = terms["nodeSelectorTerms"][0]
    assert term["matchExpressions"] == [{"key": "z", "operator": "In", "values": ["a"]}]
    assert term["matchFields"] == [
        {"key": "metadata.name", "operator": "NotIn", "values": ["k0"]},
        {"key": "metadata.name", "operator": "NotIn", "values": ["k1"]},
    ]
    assert "requiredDuringScheduling" not in repr(aff["nodeAffinity"]).replace(
        "requiredDuringSchedulingIgnoredDuringExecution", ""
    )  # the job's own affinity is not changed in place
    assert "matchFields" not in repr(aff)
    assert "nodeName" not in spec


def test_parse_lines_takes_json_lines_only() -> None:
    text = b'{"kind":"progress","bytes":1}\nnot json\n{bad\n{"kind":"result","snapshotID":"k1"}\n'
    assert parse_lines(text) == [
        {"kind": "progress", "bytes": 1},
        {"kind": "result", "snapshotID": "k1"},
    ]


def test_restore_movers_follow_the_workload_that_will_mount_the_claim() -> None:
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "db"},
        "spec": {
            "replicas": 2,
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
        },
    }
    spec = {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"operator": "Exists"}]}
    dep_spec = {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "cache"}}]}
    out = placements([("ns2", sts, spec), ("ns2", {"kind": "Deployment"}, dep_spec)])
    assert set(out) == {("ns2", "data-db-0"), ("ns2", "data-db-1"), ("ns2", "cache")}
    assert out[("ns2", "data-db-1")].node_selector == {"disk": "ssd"}
    assert out[("ns2", "cache")].tolerations == []


def test_a_claim_smaller_than_its_data_is_refused_before_writing() -> None:
    copies = {("a", "big"): VolumeCopy("a", "big", snapshot="k1", total_bytes=3 * 2**30)}
    ok = [PlannedClaim("a", "big", "b", "4Gi"), PlannedClaim("a", "other", "b", "1Ki")]
    check_sizes(ok, copies)
    with pytest.raises(PartialFailure) as exc:
        check_sizes([PlannedClaim("a", "big", "b", "2Gi")], copies)
    assert "b/big asks for 2Gi" in exc.value.message and exc.value.exit_code == 5


def test_repository_password_is_never_static(tmp_path: Path) -> None:
    key = b"k" * 32
    derived = repository_password("id1", key, create=False, root=tmp_path)
    assert derived == repository_password("id1", key, create=False, root=tmp_path)
    assert derived != repository_password("id2", key, create=False, root=tmp_path)
    with pytest.raises(UsageError):  # a restore never invents a password
        repository_password("id1", None, create=False, root=tmp_path)
    made = repository_password("id1", None, create=True, root=tmp_path)
    assert made == repository_password("id1", None, create=False, root=tmp_path)
    assert made != repository_password("id1", None, create=True, root=tmp_path / "other")
    path = tmp_path / "repository-passwords" / "id1"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(made) >= 40


def test_hook_annotations_parse_as_velero_writes_them() -> None:
    p = pod("db-0", {})
    p["spec"]["containers"] = [{"name": "main"}, {"name": "side"}]
    assert pod_hook(p, "pre") is None
    p["metadata"]["annotations"] = {
        "pre.hook.backup.velero.io/command": '["/bin/sh", "-c", "sync"]',
        "pre.hook.backup.velero.io/timeout": "1m",
        "post.hook.backup.velero.io/command": "/bin/thaw",
        "post.hook.backup.velero.io/container": "side",
        "post.hook.backup.velero.io/on-error": "Continue",
    }
    assert pod_hook(p, "pre") == Hook("pre", "main", ["/bin/sh", "-c", "sync"], "Fail", 60.0)
    assert pod_hook(p, "post") == Hook("post", "side", ["/bin/thaw"], "Continue", 30.0)
    p["metadata"]["annotations"]["pre.hook.backup.velero.io/on-error"] = "Maybe"
    with pytest.raises(UsageError, match="on-error"):
        pod_hook(p, "pre")


def test_a_claim_without_a_running_pod_is_placed_as_its_workload() -> None:
    from migrate.volumes.backup import place_by_workload

    spec = {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"operator": "Exists"}]}
    sts = {
        "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "app"},
        "spec": {
            "replicas": 1,
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "template": {"spec": spec},
        },
    }
    claims = plan_claims([claim("data-db-0"), claim("other")], [], "all")
    place_by_workload(claims, [sts])
    by = {c.name: c for c in claims}
    assert by["data-db-0"].node_selector == {"disk": "ssd"}
    assert by["data-db-0"].tolerations == [{"operator": "Exists"}]
    assert by["other"].node_selector == {} and by["other"].tolerations == []


def test_velero_volume_data_is_named_not_silently_dropped(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    keys = BackupKeys("nightly")
    assert velero_only(store, "nightly") is None  # no volume data at all
    store.put(keys.pod_volume_backups, b"\x1f\x8b")  # Velero's record, none of ours
    warning = velero_only(store, "nightly")
    assert warning is not None
    assert "Velero" in warning and "arrive empty" in warning and "velero restore" in warning
    store.put(keys.volumes, b"\x1f\x8b")  # ours beside it: our movers restore the data
    assert velero_only(store, "nightly") is None


def test_a_standby_pod_has_its_verbs_mount_and_capabilities_and_runs_standby() -> None:
    settings = MoverSettings("img:1", ACCESS, password="p")
    job = MoverJob("restore", "app", "data", ["--snapshot", "s1"], repository="prod")
    spec = pod_spec(job, "x", settings, ["standby", "--path", "/mnt/data", "--for", "restore"])[
        "spec"
    ]
    c = spec["containers"][0]
    assert c["args"] == ["standby", "--path", "/mnt/data", "--for", "restore"]
    assert c["volumeMounts"][-1]["readOnly"] is False  # the restore exec'd later writes
    assert c["securityContext"]["capabilities"]["add"] == ["CHOWN", "DAC_OVERRIDE", "FOWNER",
                                                           "FSETID"]  # fmt: skip
    assert command(job) == ["restore", "--path", "/mnt/data", "--snapshot", "s1"]


def test_a_standby_serves_one_copy_of_its_own_claim_side_and_settings() -> None:
    settings = MoverSettings("img:1", ACCESS, password="p")
    sb = Standbys(cast(Cluster, None), settings, "run-1")
    sb.pods = {
        ("restore", "test", "data", "prod"): "km-restore-data-1",
        ("backup", "prod", "data", "prod"): "km-backup-data-2",
    }
    restore = MoverJob("restore", "test", "data", ["--snapshot", "s"], repository="prod")
    assert sb.take(restore, MoverSettings("img:1", ACCESS, password="other")) == ""
    assert sb.take(MoverJob("restore", "test", "data", [], repository="test"), settings) == ""
    assert sb.take(MoverJob("restore", "test", "logs", [], repository="prod"), settings) == ""
    assert sb.take(MoverJob("backup", "prod", "data", [], mount="tmp-claim"), settings) == ""
    assert sb.take(restore, MoverSettings("img:1", ACCESS, password="p")) == "km-restore-data-1"
    assert sb.take(restore, settings) == ""  # one copy per standby
    assert sb.take(MoverJob("backup", "prod", "data", ["--create"]), settings) == "km-backup-data-2"
    assert sb.used == 2


def test_a_forget_mover_mounts_no_claim_and_has_no_capability() -> None:
    """A deleted backup's mover (volumes/forget.py) only opens the repository: no claim
    volume, every capability dropped, kmmover's forget without --path, any node's taints
    tolerated but the simulated nodes avoided."""
    settings = MoverSettings("img:1", ACCESS, password="p")
    job = MoverJob("forget", "shop", "", ["--snapshots", "k1,m1"], repository="shop",
                   tolerations=[{"operator": "Exists"}], avoid_nodes=["kwok-0"])  # fmt: skip
    spec = pod_spec(job, pod_name(job), settings)["spec"]
    container = spec["containers"][0]
    assert container["args"] == ["forget", "--snapshots", "k1,m1"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": []}
    assert [m["mountPath"] for m in container["volumeMounts"]] == ["/tmp", "/mnt"]
    assert all("persistentVolumeClaim" not in v for v in spec["volumes"])
    assert spec["tolerations"] == [{"operator": "Exists"}]
    terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["kwok-0"]
    assert pod_name(job).startswith("km-forget-shop-")
