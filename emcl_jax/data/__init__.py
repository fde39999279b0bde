"""Benchmarks by name. `load(name, ...)` returns a `TaskSet`."""

from emcl_jax.data import mnist
from emcl_jax.data import permutations
from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import DataError

# name -> (default num_tasks, default samples_per_task), Table I.
BENCHMARKS = {
    'mnist_permutations': (20, 1000),
    'many_permutations': (100, 200),
}


def load(name: str, *, num_tasks: int | None = None,
         samples_per_task: int | None = None, seed: int = 0,
         data_source: str = 'auto', data_dir: str | None = None) -> TaskSet:
  """Loads benchmark `name`, optionally shrunk.

  Raises:
    DataError: unknown benchmark, bad sizes, or data the source cannot give.
  """
  if name not in BENCHMARKS:
    raise DataError(f'unknown dataset {name!r}; use one of '
                    f'{", ".join(BENCHMARKS)}')
  default_tasks, default_samples = BENCHMARKS[name]
  num_tasks = default_tasks if num_tasks is None else num_tasks
  samples_per_task = (default_samples if samples_per_task is None
                      else samples_per_task)
  split = mnist.load(data_source, data_dir)
  return permutations.permuted_tasks(split, num_tasks, samples_per_task, seed)


__all__ = ['BENCHMARKS', 'DataError', 'TaskSet', 'load']
