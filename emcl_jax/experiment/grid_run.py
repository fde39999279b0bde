"""Settings run as one grid program, each in the folders of its solo run
(`train_and_evaluate_grid`), and the grouping of a sweep's settings into
such programs (`groups`)."""

import dataclasses
import os
from typing import Any, Callable, Optional, Sequence

import numpy as np

from emcl_jax import configs
from emcl_jax.experiment import train
from emcl_jax.experiment import workdir_run
from emcl_jax.reporting import writers
from emcl_jax.training import grid as grid_lib
from emcl_jax.training import workdir


def _static_part(config: configs.RunConfig) -> configs.RunConfig:
  """`config` with its traceable method fields blanked: two settings whose
  static parts are equal can share a grid program."""
  params = config.method.params
  blank = {k: None for k in grid_lib.traceable(params)}
  return dataclasses.replace(config, method=config.method._replace(
      params=params._replace(**blank)))


def groups(run_configs: Sequence[configs.RunConfig], *,
           max_size: int = 16) -> list[list[int]]:
  """The indices of `run_configs` cut into grid programs: settings of a
  method that runs as a grid (`train.GRID_METHODS`) whose configs differ
  only in numeric method fields share a group (at most `max_size`, in the
  order given); every other setting is a group of its own."""
  out: list[list[int]] = []
  keys: list[Any] = []
  for i, config in enumerate(run_configs):
    key = (_static_part(config) if config.method.name in train.GRID_METHODS
           else None)
    for group, other in zip(out, keys):
      if key is not None and other == key and len(group) < max_size:
        group.append(i)
        break
    else:
      out.append([i])
      keys.append(key)
  return out


class _Setting:
  """One setting's folders and writers in a grid run."""

  def __init__(self, config, root, echo):
    self.config = config
    self.name = config.output.name or config.method.name
    self.flat = configs.flat(config)
    self.chash = workdir.config_hash(config.dataset, config.method.name,
                                     self.flat)
    self.folder = lambda seed: workdir.run_dir(  # noqa: E731
        root, config.dataset, self.name, self.chash, seed)
    self.writers = workdir_run.RunWriters(config, self.name, self.chash,
                                          self.flat, self.folder, None, echo)


def train_and_evaluate_grid(
    run_configs: Sequence[configs.RunConfig],
    workdir_root: Optional[str] = None, *, label: str = '',
    echo: Optional[Callable[[str], None]] = None,
) -> list[Optional[list[dict[str, Any]]]]:
  """Runs the settings `run_configs` (alike but for numeric method fields)
  as one program (`experiment.run_grid`) and writes each setting's seeds
  into the folders its solo run (`train_and_evaluate`) uses: the same
  config hash, config.json, metrics files and results.json, so skipping,
  resuming and tables treat them alike. Their training seconds are the
  whole program's (all settings and seeds; results record `grid_settings`).

  A setting whose loss diverged returns None (no results file; the others
  finish). A grid program keeps no checkpoints: one that is stopped runs
  again from its first task.

  Args:
    run_configs: the settings, none with a finished or started seed.
    workdir_root: the work directory (default: the first's
      `output.workdir`).
    label: names the program in the progress display.
    echo: a line printer for every task's record of every setting.

  Returns:
    Per setting, its seeds' results dictionaries, or None if it diverged.

  Raises:
    RunExistsError: a setting's folder holds results or another config.
    workdir.RunLockedError: another process is running one of the runs.
    ValueError (ConfigError): configs that cannot share a program.
  """
  run_configs = [configs.resolve(c) for c in run_configs]
  root = workdir_root or run_configs[0].output.workdir
  settings = [_Setting(c, root, echo) for c in run_configs]
  primary = workdir.is_primary()
  locks = [workdir.RunLock(s.folder(seed)) for s in settings
           for seed in s.config.seed_list] if primary else []
  shown = (writers.ProgressWriter(label)
           if run_configs[0].output.progress else None)
  try:
    for lock in locks:
      lock.acquire()
    for s in settings:
      _refuse_started(s)

    def record_fn(record):
      for g, s in enumerate(settings):
        s.writers.record(_pick(record, g), True)
      if shown is not None:
        shown.write_scalars(record.task + 1, writers.task_scalars(record))

    runs = train.run_grid(run_configs, record_fn=record_fn,
                          batch_fn=None if shown is None else shown.batch)
    for s, res in zip(settings, runs):
      if res is not None:
        _finish(s, res, primary)
    return runs
  finally:
    for s in settings:
      s.writers.close()
    if shown is not None:
      shown.close()
    for lock in locks:
      lock.release()
    for s in settings:
      for seed in s.config.seed_list:
        workdir_run.prune_empty(s.folder(seed), root)


def _refuse_started(s: _Setting) -> None:
  """A grid program starts its settings from the first task: a folder with
  results, or holding another config, is refused."""
  for seed in s.config.seed_list:
    path = os.path.join(s.folder(seed), workdir.RESULTS)
    if os.path.exists(path) and not s.config.output.overwrite:
      raise workdir_run.RunExistsError(
          f'{path} exists: run {s.name} on its own (it skips finished '
          'seeds), or pass --overwrite')
  workdir_run.check_configs(s.config.seed_list, s.folder, s.flat,
                            s.config.output.overwrite)


def _pick(record: Any, g: int) -> Any:
  """Setting g's rows of a grid program's task record."""
  cls = record.accuracy_class
  return record._replace(
      loss=np.asarray(record.loss)[g],
      accuracy=np.asarray(record.accuracy)[g],
      accuracy_class=None if cls is None else np.asarray(cls)[g])


def _finish(s: _Setting, runs: list[dict[str, Any]], primary: bool) -> None:
  """The final metrics and the results files of one setting's seeds."""
  s.writers.finish(runs)
  if primary:
    for seed, res in zip(s.config.seed_list, runs):
      workdir.write_json(os.path.join(s.folder(seed), workdir.RESULTS), res)
