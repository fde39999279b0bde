"""A run's results dictionary, `results.json`. Schema (all keys always
present):

  schema_version  int, 2 (1: no config_hash, stream_length, fwt,
                  forgetting, init_accuracy, and config without
                  data_source, data_dir, eval, epochs)
  dataset, method str;  seed int
  name            str: the run's label, the method's name unless given
  config          dict: `configs.flat` of the resolved run config: every
                  hyper-parameter of the method, plus num_tasks,
                  samples_per_task (None: all), batch_size, model,
                  class_order, data_source, data_dir, eval ('task',
                  'class' or 'both'), epochs
  config_hash     str: `workdir.config_hash(dataset, method, config)`
  stream_length   int: training samples per task (one epoch; the
                  validation samples held out are not among them)
  versions        dict: emcl_jax, jax, jaxlib, flax, optax, numpy, python
  data_source     str: 'bundled:mnist-5k', 'dir:/abs/path' or 'tfds:mnist'
  device          str: the JAX backend the run used
  accuracy_matrix list of T lists of T floats, fractions in [0, 1];
                  [i][j] = accuracy on task j after training task i
                  (one list for `joint`, trained on one shuffled stream)
  acc, bwt, la    float, percent (Eq 22, Eq 23, mean of the diagonal;
                  for `joint` bwt is 0 and la equals acc)
  fwt, forgetting float, percent: GEM's forward transfer and average
                  forgetting (`reporting.metrics`; 0 for `joint`)
  init_accuracy   list of T floats: the untrained model's accuracy on
                  every task (FWT's b)
  accuracy_matrix_class, acc_class, bwt_class, la_class,
  forgetting_class   only with config eval 'both': the class-incremental
                  matrix and its metrics (the unsuffixed keys are then the
                  task-incremental ones; with eval 'class' they are the
                  class-incremental ones)
  val_accuracy_matrix, val_acc, val_bwt, val_la, val_forgetting,
  val_samples     only with config validation > 0: the accuracies on each
                  task's validation set (held out of its training samples,
                  `data.tasks.hold_out`), scored as accuracy_matrix is,
                  their metrics, and the validation samples per task
  train_seconds   float: compiled training calls only
  compile_seconds, eval_seconds, total_seconds   float
  loop_seconds    float: wall time of the loop over tasks (training and
                  evaluation, which may overlap with output.overlap_eval)
  task_losses     list of T floats: mean training loss per task
  task_train_seconds  list of T floats: each task's training seconds
  peak_rss_bytes  int: the process's peak resident memory so far (host;
                  data loading included)
  device_peak_bytes  int or None: peak bytes the JAX allocator held on the
                  device (GPU); None where the backend does not say (CPU)
  parallel_seeds  int, only for seeds run together as one vmapped program:
                  how many (the timings are then the whole program's)
"""

import platform
import resource
import sys
from typing import Any, Optional

import flax
import jax
import jaxlib
import numpy as np
import optax

from emcl_jax import version
from emcl_jax.reporting import metrics
from emcl_jax.training import engine
from emcl_jax.training import workdir

SCHEMA_VERSION = 2


def results(dataset: str, method: str, seed: int, name: str,
            config: dict[str, Any], stream_length: int, source: str,
            result: engine.RunResult,
            index: Optional[int] = None) -> dict[str, Any]:
  """The results dictionary (module docstring) of one seed.

  Args:
    config: the run's `configs.flat` dictionary.
    stream_length: training samples per task (one epoch).
    source: the data's provenance (`TaskSet.source`).
    result: the engine's outcome.
    index: the seed's position on the seed axis of a vmapped `result`.
  """
  pick = lambda a: None if a is None else (  # noqa: E731
      np.asarray(a) if index is None else np.asarray(a)[index])
  r, task_losses = pick(result.accuracy_matrix), pick(result.task_losses)
  b, r_class = pick(result.init_accuracy), pick(result.accuracy_matrix_class)
  r_val = pick(result.val_accuracy_matrix)
  extra = {}
  if r_class is not None:
    extra['accuracy_matrix_class'] = r_class.tolist()
    extra.update({f'{k}_class': v for k, v in metrics.summary(r_class).items()})
  if r_val is not None:
    extra['val_accuracy_matrix'] = r_val.tolist()
    extra.update({f'val_{k}': v for k, v in metrics.summary(r_val).items()})
  return {
      'schema_version': SCHEMA_VERSION,
      'dataset': dataset,
      'method': method,
      'name': name,
      'seed': seed,
      'config': config,
      'config_hash': workdir.config_hash(dataset, method, config),
      'stream_length': stream_length,
      'versions': versions(),
      'data_source': source,
      'device': jax.default_backend(),
      'accuracy_matrix': r.tolist(),
      **metrics.summary(r, b),
      'init_accuracy': None if b is None else b.tolist(),
      **extra,
      'train_seconds': result.train_seconds,
      'compile_seconds': result.compile_seconds,
      'eval_seconds': result.eval_seconds,
      'total_seconds': result.total_seconds,
      'loop_seconds': result.loop_seconds,
      'task_losses': np.asarray(task_losses).tolist(),
      'task_train_seconds': np.asarray(result.task_train_seconds).tolist(),
      **peak_memory(),
  }


def peak_rss_bytes() -> int:
  """Peak resident memory of this process so far (getrusage), in bytes."""
  rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return int(rss) * (1 if sys.platform == 'darwin' else 1024)  # Linux: KiB


def peak_memory() -> dict[str, Optional[int]]:
  """`peak_rss_bytes` (this process) and `device_peak_bytes` (the default
  device's allocator; None on CPU)."""
  try:
    stats = jax.devices()[0].memory_stats() or {}
  except Exception:  # pylint: disable=broad-except
    stats = {}
  peak = stats.get('peak_bytes_in_use')
  return {'peak_rss_bytes': peak_rss_bytes(),
          'device_peak_bytes': None if peak is None else int(peak)}


def versions() -> dict[str, str]:
  """The versions of emcl_jax, its numerical dependencies and Python."""
  return {'emcl_jax': version.__version__, 'jax': jax.__version__,
          'jaxlib': jaxlib.__version__, 'flax': flax.__version__,
          'optax': optax.__version__, 'numpy': np.__version__,
          'python': platform.python_version()}
