"""Install emcl_jax: pip install -e .  (tests: pip install -e .[test])."""

import os

from setuptools import find_packages
from setuptools import setup

here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, 'requirements.txt')) as f:
  requirements = [line.split('#')[0].strip() for line in f
                  if line.split('#')[0].strip()]

setup(
    name='emcl_jax',
    version='0.1.0',
    description='Fast, functional meta-continual learning in JAX (EMCL).',
    long_description=open(os.path.join(here, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['emcl_jax', 'emcl_jax.*']),
    package_data={'emcl_jax.data': ['mnist_5k/*.gz']},
    include_package_data=True,
    python_requires='>=3.10',
    install_requires=requirements,
    extras_require={'test': ['pytest>=7', 'pytest-xdist>=3']},
    license='Apache-2.0',
)
