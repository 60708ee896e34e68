"""Scheduled backups: the objects a schedule installs (a CronJob running the kube-migrate
image, least-privilege RBAC), checked and applied in the source cluster."""
