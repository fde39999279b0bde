"""Several JAX processes, one run: reading sharded results back to the host
and waiting for the other processes.

After `jax.distributed.initialize()`, `jax.devices()` lists every process's
devices and a seed axis sharded over them is spread across processes. A
process can only read the shards on its own devices, so every read-back of
such an array is a collective (`to_host`: all processes call it, in the
same order). With one process these are plain `np.asarray` calls.

A collective whose peer process died fails; it is raised here as one-line
`ProcessLostError`.
"""

from typing import Any

import jax
from jax.experimental import multihost_utils
import numpy as np

from emcl_jax.errors import ProcessLostError, first_line


def several() -> bool:
  """Whether this run spans several JAX processes."""
  return jax.process_count() > 1


def lost(e: BaseException) -> ProcessLostError:
  """The one-line error for a collective that failed because another
  process stopped."""
  return ProcessLostError(
      f'another process of this {jax.process_count()}-process run stopped '
      f'({first_line(e)[:160]}); start every process again with the same '
      'command to resume from the last finished task')


def to_host(x: Any) -> np.ndarray:
  """`x` as a NumPy array on this host: gathered from every process when
  its shards span several (a collective), else `np.asarray(x)`.

  Raises:
    ProcessLostError: another process stopped.
  """
  if isinstance(x, jax.Array) and not x.is_fully_addressable:
    try:
      return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    except Exception as e:  # pylint: disable=broad-except
      raise lost(e) from None
  return np.asarray(x)


def tree_to_host(tree: Any) -> Any:
  """`to_host` of every leaf of `tree`."""
  return jax.tree.map(to_host, tree)


def barrier(name: str) -> None:
  """Waits until every process reached the barrier `name` (nothing with
  one process).

  Raises:
    ProcessLostError: another process stopped.
  """
  if not several():
    return
  try:
    multihost_utils.sync_global_devices(name)
  except Exception as e:  # pylint: disable=broad-except
    raise lost(e) from None
