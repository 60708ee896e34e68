"""Backup: list the source cluster and write a Velero-format backup to the bucket; list,
describe, delete and garbage-collect backups (ours and Velero's)."""
