"""Sync: wait until the target side's view of the bucket holds a complete backup.

The target may read the bucket through another endpoint or a replica that copies
objects one by one and in any order; before a restore starts, every file of the backup
must be there with the size and sha256 our manifest recorded.  Optionally it also waits
until Velero on the target has synced the Backup object from the bucket.
"""
