"""Volume data: the files in PersistentVolumeClaims, copied by kopia mover pods."""
