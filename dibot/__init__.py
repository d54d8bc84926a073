"""dibot's shell: configuration, the web app, the turn handler, workers and the CLI.

The pure core lives in `bot/`, `flows/` and `scoring/`; this package wires it to storage and
channels.
"""
