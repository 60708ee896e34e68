"""Object-level knowledge and rewrites shared by the steps: where pod templates live in
each workload kind, and (with restore) the transforms applied to clones."""
