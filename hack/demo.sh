#!/usr/bin/env bash
# `make demo`: migrate the example shop app from the source plane to the target plane
# with playbooks/migrate-cluster.yaml, then show the verification and where the report
# is.  Needs `hack/dev-env up` (make demo does it).  A second run finds the app already
# on the target: the restore skips what exists and verify still shows zero drift.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=/dev/null
source .dev-env/env
# shellcheck source=versions.env
source hack/versions.env
KM=.venv/bin/kube-migrate
KUBECTL=${KUBE_MIGRATE_CACHE:-$HOME/.cache/kube-migrate}/bin/k8s-$K8S_PRIMARY/kubectl
SRC=$KUBE_MIGRATE_SOURCE_KUBECONFIG
DST=$KUBE_MIGRATE_TARGET_KUBECONFIG
NAME=shop-$(date -u +%Y%m%d%H%M%S)
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "The two clusters"
$KM cluster info --kubeconfig "$SRC"
$KM cluster info --kubeconfig "$DST" | tail -n +2

step "1. The shop app on the source cluster"
"$KUBECTL" --kubeconfig "$SRC" apply -f examples/shop/00-cluster.yaml >/dev/null
"$KUBECTL" --kubeconfig "$SRC" wait --for condition=established --timeout 60s \
  crd/widgets.shop.example.com >/dev/null
for f in examples/shop/[1-9]*.yaml; do "$KUBECTL" --kubeconfig "$SRC" apply -f "$f" >/dev/null; done
"$KUBECTL" --kubeconfig "$SRC" get deploy,sts,svc,cm,secret,widgets -n shop

step "2. A target that has never seen the shop (removing what an earlier demo or test left)"
"$KUBECTL" --kubeconfig "$DST" delete --ignore-not-found --wait=true --timeout=120s \
  -f examples/shop/20-shop-data.yaml -f examples/shop/10-shop.yaml >/dev/null 2>&1 || true
"$KUBECTL" --kubeconfig "$DST" delete --ignore-not-found -f examples/shop/00-cluster.yaml >/dev/null
"$KUBECTL" --kubeconfig "$DST" get ns

step "3. Run playbooks/migrate-cluster.yaml: preflight, backup, wait for sync, restore, wait, verify"
REPORT=kube-migrate-reports/demo-$NAME
$KM run playbooks/migrate-cluster.yaml --report-dir "$REPORT"

step "4. The verification, from $REPORT/report.json"
.venv/bin/python - "$REPORT/report.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for s in doc["steps"]:
    print(f"  {s['step']:<12} {s['status']:<10} {s['seconds']}s")
v = next(s["result"] for s in doc["steps"] if s["step"] == "verify")
print(f"\n  verify: {v['equal']} objects equal, {v['drifted']} drifted "
      f"(source {doc['source']['version']} -> target {doc['target']['version']})")
PY
echo "  report: $REPORT/report.html (and report.md, report.json, junit.xml)"

step "5. On the target cluster"
"$KUBECTL" --kubeconfig "$DST" get deploy,sts,svc,cm,secret,widgets -n shop
