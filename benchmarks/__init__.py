"""Benchmarks of the model's speed and memory against mesa and bare-numpy references.

See ``benchmarks/README.md`` for what each script measures and the figures measured.
"""
