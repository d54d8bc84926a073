"""Benchmarks and cost reports the project ships; run them with `python -m bench.NAME`."""
