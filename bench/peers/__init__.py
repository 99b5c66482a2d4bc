"""Peers run side by side with Yinsi in the benchmarks, installed in their own venv (see setup_*_peers.sh)."""
