"""Yinsi (隐私): the engine that makes a Chinese app's privacy policy true."""

__version__ = "0.1.0"
