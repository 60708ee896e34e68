"""CSI snapshots, pure logic: which claims a backup reads from a snapshot and why the
others are read live; the mover pod mounting a snapshot's temporary claim; preflight's
wording."""

from __future__ import annotations

from typing import Any

from migrate.store.mover_access import MoverAccess
from migrate.transform.snapshot_method import DEFAULT_CLASS, LIVE, SnapshotSupport, method
from migrate.volumes.mover_pod import MoverJob, MoverSettings, pod_spec

DRIVER = "hostpath.csi.k8s.io"


def vsclass(name: str, driver: str = DRIVER, default: bool = False) -> dict[str, Any]:
    notes = {DEFAULT_CLASS: "true"} if default else {}
    return {"metadata": {"name": name, "annotations": notes}, "driver": driver}


def sclass(name: str, provisioner: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "provisioner": provisioner}


CLASSES = [sclass("csi-hostpath-sc", DRIVER), sclass("standard", "rancher.io/local-path")]


def test_a_driver_uses_its_default_class_else_the_first_by_name() -> None:
    support = SnapshotSupport.of(
        True, [vsclass("b-snap"), vsclass("c-snap", default=True), vsclass("a-snap")], CLASSES
    )
    assert support.classes == {DRIVER: "c-snap"}
    plain = SnapshotSupport.of(True, [vsclass("b-snap"), vsclass("a-snap")], CLASSES)
    assert plain.classes == {DRIVER: "a-snap"}


def test_each_claim_gets_its_method_or_the_reason_it_is_copied_live() -> None:
    support = SnapshotSupport.of(True, [vsclass("csi-hostpath-snapclass")], CLASSES)
    m = method("csi-hostpath-sc", support, "auto")
    assert m.snapshot and m.snapshot_class == "csi-hostpath-snapclass" and not m.reason
    assert method("csi-hostpath-sc", support, "always").snapshot
    local = method("standard", support, "auto")
    assert not local.snapshot and local.live == "no-snapshot-class"
    assert "rancher.io/local-path" in local.reason
    missing = method("gone", support, "auto")
    assert missing.live == "no-class" and "'gone'" in missing.reason
    never = method("csi-hostpath-sc", support, "never")
    assert not never.snapshot and never.reason == LIVE["never"]


def test_a_cluster_without_the_snapshot_api_copies_live_and_says_why() -> None:
    m = method("csi-hostpath-sc", SnapshotSupport(), "auto")
    assert not m.snapshot and m.live == "no-api"
    assert "snapshot.storage.k8s.io" in m.reason


def test_the_mover_mounts_the_temporary_claim_read_only_under_the_claims_identity() -> None:
    access = MoverAccess("b", "pre/", "127.0.0.1:9000", True, "us-east-1", "AK", "SK")
    cfg = MoverSettings(image="km-mover:1", access=access, password="x")
    job = MoverJob("backup", "shop", "data", ["--user", "data"], mount="km-snap-data-abc123")
    spec = pod_spec(job, "km-backup-data-1", cfg)["spec"]
    vol = next(v for v in spec["volumes"] if v["name"] == "data")
    assert vol["persistentVolumeClaim"] == {"claimName": "km-snap-data-abc123", "readOnly": True}
    live = pod_spec(MoverJob("backup", "shop", "data", []), "m", cfg)["spec"]
    assert next(v for v in live["volumes"] if v["name"] == "data")["persistentVolumeClaim"] == {
        "claimName": "data",
        "readOnly": True,
    }


def test_clones_come_from_kept_snapshots_with_a_handle_under_stable_names() -> None:
    from migrate.volumes.clone import plan_clones
    from migrate.volumes.records import VolumeCopy

    kept = VolumeCopy("shop", "data", kept_snapshot="km-data-1", snapshot_handle="h-1",
                      driver=DRIVER, snapshot_class="csi-hostpath-snapclass")  # fmt: skip
    moved = VolumeCopy("shop", "logs", snapshot="k1")
    unknown = VolumeCopy("shop", "tmp", kept_snapshot="km-tmp-1")  # no handle recorded
    claims = [("shop", "data", "shop-test"), ("shop", "logs", "shop-test"),
              ("shop", "tmp", "shop-test")]  # fmt: skip
    first = plan_clones([kept, moved, unknown], claims, "r1")
    assert list(first) == [("shop-test", "data")]
    c = first[("shop-test", "data")]
    assert (c.handle, c.driver, c.target_ns) == ("h-1", DRIVER, "shop-test")
    assert c.data_source == {"apiGroup": "snapshot.storage.k8s.io", "kind": "VolumeSnapshot",
                             "name": c.snapshot}  # fmt: skip
    assert plan_clones([kept], claims, "r1") == first  # a resumed restore finds its own
    assert plan_clones([kept], claims, "r2")[("shop-test", "data")].snapshot != c.snapshot


def test_a_pvs_node_affinity_is_matched_against_node_labels_whatever_the_key() -> None:
    from migrate.volumes.snapshots import _matches

    hostpath = {"matchExpressions": [{"key": "topology.hostpath.csi/node", "operator": "In",
                                      "values": ["real-node"]}]}  # fmt: skip
    assert _matches({"topology.hostpath.csi/node": "real-node"}, hostpath)
    assert not _matches({"topology.hostpath.csi/node": "other"}, hostpath)
    assert not _matches({}, hostpath)
    both = {"matchExpressions": [*hostpath["matchExpressions"],
                                 {"key": "kwok", "operator": "DoesNotExist"}]}  # fmt: skip
    assert not _matches({"topology.hostpath.csi/node": "real-node", "kwok": "x"}, both)
    assert not _matches({"a": "b"}, {"matchExpressions": []})
