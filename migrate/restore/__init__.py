"""Restore: read a backup, plan it as a dependency graph, create level by level in
parallel on the target, and record per-object results (Velero's restore layout)."""
