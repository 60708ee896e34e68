#!/usr/bin/env bash
# `make demo`: migrate the example shop app from the source plane to the target plane
# through the bucket, narrating each step.  Needs `hack/dev-env up` (make demo does it).
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

step "2. Back up namespaces shop and shop-data into $KUBE_MIGRATE_BUCKET (Velero's layout)"
$KM backup create "$NAME" --kubeconfig "$SRC" --include-namespaces shop,shop-data
$KM backup describe "$NAME" | sed -n '1,60p'

step "3. Wait until the target side of the bucket holds the complete backup"
$KM backup wait-sync "$NAME" --timeout 2m

step "4. The restore plan (dependency levels), then the restore"
$KM restore create "$NAME-to-target" --from-backup "$NAME" --kubeconfig "$DST" --dry-run |
  grep -v ' skip: '
$KM restore create "$NAME-to-target" --from-backup "$NAME" --kubeconfig "$DST" --wait-ready

step "5. On the target cluster"
"$KUBECTL" --kubeconfig "$DST" get deploy,sts,svc,cm,secret,widgets -n shop
"$KUBECTL" --kubeconfig "$DST" get pods -n shop -o wide
