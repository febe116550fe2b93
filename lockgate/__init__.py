"""Lockgate's command line (`lockgate ...`) and the generated cluster protocol (`lockgate.v1`)."""

__version__ = "0.1.0"
