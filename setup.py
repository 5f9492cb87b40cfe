"""Beam's --setup_file for Dataflow workers: the package itself is described in pyproject.toml."""

from setuptools import setup

setup()
