"""Benchmarks (``make bench``): speed and memory at scale, never timed tests."""
