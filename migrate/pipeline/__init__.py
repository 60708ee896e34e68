"""The pipeline: a migration's steps, their order, gates, run state and resume.

`kube-migrate run` drives it (cli/run_cmd.py) and `kube-migrate preflight` shares its
live snapshot + preflight (snapshot.py).  It imports no click and no rich and nothing
from migrate.cli: it reports through typed events (events.py) to a sink its caller
gives it.  Modules: context.py (what a run's steps share), run.py (the step table and
the loop), steps_move.py and steps_check.py (one function per step), snapshot.py,
resume.py (start, find and resume a run), events.py.  Nothing is imported here, so a
command imports only the modules it uses.
"""
