"""One module per Beam pipeline, and cli.py, the `vlcurate` command."""
