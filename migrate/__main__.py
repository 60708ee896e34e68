"""Allow ``python -m migrate`` as a third way to reach the CLI."""

from migrate.cli.main import main

main()
