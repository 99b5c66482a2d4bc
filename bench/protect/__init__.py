"""Micro-benchmarks of yinsi.protect (``python -m bench.protect.run``)."""
