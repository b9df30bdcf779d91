"""dpfm subcommands, one module each (see host/cli.py)."""
