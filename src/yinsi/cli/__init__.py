"""The ``yinsi`` command line (Typer + Rich)."""
