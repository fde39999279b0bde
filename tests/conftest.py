"""Test setup shared by every test module.

In-process tests run on the CPU (`JAX_PLATFORMS=cpu`, unless the caller set
it): bitwise equalities (resume, vmapped seeds) are promised on the CPU
only. Subprocess tests pass the same variable to their children.

Tests marked `slow` (subprocess runs of the launch scripts, whole-protocol
runs and sweeps, compiled convolutional models) are left out of the fast
tier: `pytest -m "not slow" -n 2 tests`.
"""

import os
import shutil
import tempfile

os.environ.setdefault('JAX_PLATFORMS', 'cpu')

# One persistent compilation cache for the whole test run, shared by the
# xdist workers and the subprocesses they start (which inherit the
# environment): the many runs of the same small programs compile once.
# Cached executables are the compiled code itself, so results (bitwise
# equalities included) are unchanged.
_RUN = os.environ.get('PYTEST_XDIST_TESTRUNUID') or str(os.getpid())
CACHE_DIR = os.path.join(tempfile.gettempdir(), f'emcl_jax_tests_{_RUN}')
os.environ.setdefault('JAX_COMPILATION_CACHE_DIR', CACHE_DIR)
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
os.environ.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
# JAX writes cache entries in place: a process may read one another is still
# writing, warn on stderr and compile instead (same result). The warning
# would be an extra stderr line in the children whose exact output the tests
# check, so children leave out that one module's warnings.
os.environ.setdefault('PYTHONWARNINGS', 'ignore::UserWarning:jax._src.compiler')


def pytest_sessionfinish(session):
  """The controller (not an xdist worker) removes the run's cache."""
  if not hasattr(session.config, 'workerinput'):
    shutil.rmtree(CACHE_DIR, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
  """Slow tests first within each file. Under `--dist loadscope` xdist (3.7
  and later) hands out the classes (and files of test functions) with the
  most tests first: the unit tests, which fill the compilation cache that
  the few-test slow classes' subprocesses then read. (Sending the slow files first, with a cold
  cache, made the whole run about 25% slower.)"""
  del config
  items.sort(key=lambda item: item.get_closest_marker('slow') is None)
