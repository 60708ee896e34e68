"""What only a backup leaves out.  The resource types every step leaves out are one
table in migrate.transform.exclusions (verify reads it too); this module keeps what is
backup's own: the per-object label that keeps an object out of a backup."""

from __future__ import annotations

# Label that keeps an object out of any backup (Velero's).  Backup's own: it is set on
# source objects to say "do not back this up", and is read where objects are listed
# (backup.sink, backup.changes, backup.grants).
EXCLUDE_LABEL = "velero.io/exclude-from-backup"
