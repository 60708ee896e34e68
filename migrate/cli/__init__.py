"""Command-line interface: click commands that parse flags and call the step packages."""
