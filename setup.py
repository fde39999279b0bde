"""Install emcl_jax: pip install -e .  (tests: pip install -e '.[test]').

The metadata lives in pyproject.toml; this shim keeps `python setup.py`
workflows working.
"""

from setuptools import setup

setup()
