"""Benchmarks for the folder → TFRecord converter (figures: benchmarks/RESULTS.md).

Run everything with one command: ``python -m benchmarks.run`` (``--help`` for options).
"""
