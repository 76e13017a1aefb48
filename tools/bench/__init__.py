"""Performance benchmarks of the operator (issue #8): ``python -m tools.bench``; see run.py and docs/performance.md."""
