"""Benchmarks for iris-jupyterhub (``make bench``): measured and printed, never asserted."""
