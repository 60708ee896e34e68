# kube-migrate: `make demo` runs the main job, `make test` the tests (see README.md).
PY      := .venv/bin/python
VENV_OK := .venv/.installed

.PHONY: demo test lint typecheck unit host-deps binaries images up down status clean venv image bench bench-startup bench-volumes bench-snapshots bench-live

$(VENV_OK): pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -e '.[dev]'
	touch $@

venv: $(VENV_OK)

host-deps:           ## apt: containerd, runc, busybox-static, CNI plugins (the real nodes)
	hack/host-deps.sh

binaries: host-deps  ## kube-apiserver & co, kubelet, etcd, kwok, MinIO... into ~/.cache/kube-migrate
	hack/build.sh

images: binaries    ## the real nodes' images (busybox, pause, provisioner, mover) as tars; no import
	python3 hack/devenv/images.py

image: venv binaries  ## the kube-migrate image, offline: dist/kube-migrate-<version>.oci.tar (+ rootfs for Containerfile)
	cd hack && ../.venv/bin/python -m devenv.app_image

up: venv binaries    ## start the two local clusters and MinIO
	hack/dev-env up

down:
	hack/dev-env down

status:
	hack/dev-env status

demo: up             ## the main job: migrate the example shop app from source to target
	hack/demo.sh

bench: up           ## benchmarks vs raw LIST/POST and Velero, one run (bench/README.md)
	.venv/bin/python bench/run.py
	.venv/bin/python bench/volume_data.py
	.venv/bin/python bench/csi_snapshots.py
	.venv/bin/python bench/live_migration.py

bench-volumes: up     ## volume data: the mover next to tar|upload and get|untar on a real node (issue 20)
	.venv/bin/python bench/volume_data.py

bench-snapshots: up  ## CSI snapshots: the hooks' hold and a same-cluster clone vs a mover restore (issue 21)
	.venv/bin/python bench/csi_snapshots.py

bench-live: up        ## live migration: the cut-over's downtime vs a one-shot migration (issue 22)
	.venv/bin/python bench/live_migration.py

bench-startup: venv  ## the CLI's start-up only (no cluster; also part of `make bench`)
	.venv/bin/python bench/startup.py

lint: venv
	.venv/bin/ruff check migrate tests hack bench
	.venv/bin/ruff format --check migrate tests hack bench
	.venv/bin/lint-imports

typecheck: venv
	.venv/bin/mypy --strict migrate

test: lint typecheck binaries   ## lint, types, import layers, then every test on the real planes
	.venv/bin/pytest -v $(PYTEST_ARGS)

unit: venv           ## only the tests that need no cluster
	.venv/bin/pytest -m "not cluster and not s3" $(PYTEST_ARGS)

clean: down
	rm -rf .venv .dev-env
