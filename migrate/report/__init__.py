"""The report of a migration run: one directory with report.json (everything), report.md
and report.html (for people: versions, preflight findings, backup stats, restore results
by level, the verification table, the restore graph), and the verify JUnit file."""
