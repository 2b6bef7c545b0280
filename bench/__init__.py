"""Latency benchmark of the live call path: `python -m bench.latency` (see bench/README.md)."""
