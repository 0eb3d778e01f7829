"""Benchmarks of the batch-invariant ops against non-invariant baselines: `python -m bench <op>`."""
