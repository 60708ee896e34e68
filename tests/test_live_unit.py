"""Pure logic of live migration: holding workloads (and what verify compares), an
incremental backup's positions, increment names, and the playbook rules of the precopy
and cutover steps."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from migrate.errors import PlaybookError
from migrate.pipeline.increments import child_name
from migrate.playbook import load_playbook
from migrate.restore.held import stopped
from migrate.store.positions import Positions
from migrate.transform.hold import HELD, QUIESCED, as_intended, hold, hold_patch, release_patch


def deploy(replicas: int | None, notes: dict[str, str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {} if replicas is None else {"replicas": replicas}
    return {"kind": "Deployment", "metadata": {"name": "w", "annotations": notes or {}},
            "spec": spec}  # fmt: skip


def test_hold_keeps_the_intended_value_and_release_gives_it_back() -> None:
    held = hold(deploy(3))
    assert held["spec"]["replicas"] == 0 and json.loads(held["metadata"]["annotations"][HELD]) == 3
    assert release_patch(held) == {"metadata": {"annotations": {HELD: None}},
                                   "spec": {"replicas": 3}}  # fmt: skip
    assert hold(deploy(None))["metadata"]["annotations"][HELD] == "1"  # the API's default
    cron = hold({"kind": "CronJob", "metadata": {}, "spec": {"schedule": "* * * * *"}})
    assert cron["spec"]["suspend"] is True and cron["metadata"]["annotations"][HELD] == "false"
    assert hold({"kind": "ConfigMap", "metadata": {}}) == {"kind": "ConfigMap", "metadata": {}}


def test_a_held_source_travels_held_and_keeps_its_real_value() -> None:
    source = deploy(2)
    patch = hold_patch(source)
    assert patch == {"metadata": {"annotations": {HELD: "2"}}, "spec": {"replicas": 0}}
    stopped = deploy(0, {HELD: "2"})
    assert hold_patch(stopped) is None  # held already: its record stays
    again = hold(copy.deepcopy(stopped))  # the final increment restored held on the target
    assert again["spec"]["replicas"] == 0 and again["metadata"]["annotations"][HELD] == "2"
    quiesced = hold(deploy(0, {QUIESCED: "4"}))  # scaled down for a copy: 4 is real
    assert quiesced["metadata"]["annotations"] == {HELD: "4"}


def test_verify_compares_intended_values() -> None:
    want = {"kind": "Deployment", "metadata": {"name": "w"}, "spec": {"replicas": 2}}
    assert as_intended(deploy(0, {HELD: "2"})) == want
    assert as_intended(deploy(0, {QUIESCED: "2"})) == want
    kept = as_intended(deploy(0, {HELD: "2", "team": "a"}))
    assert kept["spec"]["replicas"] == 2 and kept["metadata"]["annotations"] == {"team": "a"}
    assert as_intended(deploy(0))["spec"]["replicas"] == 0  # not held: really 0


def test_positions_hold_the_chain_and_write_only_what_changed() -> None:
    full = Positions(chain=["f"])
    assert full.written("configmaps", "ns", "a", "10") and full.written(
        "configmaps", "ns", "b", "11"
    )
    full.listed("configmaps", "ns", "12")
    back = Positions.parse(full.to_bytes(), "f")
    inc = back.child("i")
    assert inc.chain == ["f", "i"] and inc.incremental and not full.incremental
    assert not inc.written("configmaps", "ns", "a", "10")  # the parent holds it as it is
    assert inc.written("configmaps", "ns", "a", "13")
    assert inc.gone("", "configmaps", "ns", "b") and not inc.gone("", "configmaps", "ns", "zz")
    assert [(d.resource, d.name) for d in inc.deleted] == [("configmaps", "b")]
    assert inc.held("configmaps", "ns") == {"ns/a": "13"}
    assert back.objects == {"configmaps": {"ns/a": "10", "ns/b": "11"}}  # the parent's own


def test_increment_names_fit_a_label() -> None:
    base = "live-migrate-with-a-rather-long-name-20261207010203"
    name = child_name(base + "x" * 20, "c12")
    assert len(name) <= 63 and name.endswith("-c12")
    assert child_name("run-1", "p1") == "run-1-p1"


RULES = [
    ("  restore: {holdWorkloads: true}\n  steps: [backup, waitForSync, precopy]\n",
     "one of them is missing"),
    ("  restore: {holdWorkloads: false}\n  steps: [backup, waitForSync, restore, cutover]\n",
     "held until the cut-over"),
    ("  scope: {includeNamespaces: ['*']}\n  restore: {holdWorkloads: true}\n"
     "  steps: [backup, waitForSync, restore, cutover]\n", "names none"),
    ("  restore: {holdWorkloads: true}\n"
     "  steps: [backup, waitForSync, restore, cutover, precopy]\n",
     "precopy must come before cutover"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "message"), RULES)
def test_live_steps_rules(tmp_path: Path, body: str, message: str) -> None:
    scope = "" if "scope:" in body else "  scope: {includeNamespaces: [shop]}\n"
    path = tmp_path / "pb.yaml"
    path.write_text("apiVersion: kube-migrate.io/v1alpha1\nkind: Playbook\n"
                    f"metadata: {{name: t}}\nspec:\n{scope}{body}")  # fmt: skip
    with pytest.raises(PlaybookError) as err:
        load_playbook(str(path), env={})
    assert message in err.value.message


def test_a_pod_is_stopped_once_none_of_its_containers_runs() -> None:
    deleting = {"deletionTimestamp": "2026-12-07T00:00:00Z"}
    running = {"state": {"running": {}}}
    done = {"state": {"terminated": {"exitCode": 137}}}
    assert not stopped({"metadata": {}, "status": {"phase": "Running",
                                                   "containerStatuses": [done]}})  # fmt: skip
    assert not stopped({"metadata": deleting, "status": {"containerStatuses": [done, running]}})
    assert stopped({"metadata": deleting, "status": {"containerStatuses": [done, done]}})
    assert stopped({"metadata": deleting, "status": {"phase": "Pending"}})  # never started
    assert stopped({"metadata": {}, "status": {"phase": "Succeeded"}})
