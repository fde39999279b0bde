"""Test setup shared by every test module.

In-process tests run on the CPU (`JAX_PLATFORMS=cpu`, unless the caller set
it): bitwise equalities (resume, vmapped seeds) are promised on the CPU
only. Subprocess tests pass the same variable to their children.

Tests marked `slow` (subprocess runs of the launch scripts, whole-protocol
runs) are left out of the fast tier: `pytest -m "not slow" -n 2 tests`.
"""

import os

os.environ.setdefault('JAX_PLATFORMS', 'cpu')
