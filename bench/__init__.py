"""Switchyard's benchmark harness: `make bench` (`python -m bench`).

Speed and memory targets are ratios against a baseline measured in the same run, never timed
assertions in tests; results and method are in docs/benchmarks.md.
"""
