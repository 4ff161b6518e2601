"""Benchmarks for the folder → TFRecord converter (see docs/performance.md).

Run everything with one command: ``python -m benchmarks.run`` (``--help`` for options).
"""
