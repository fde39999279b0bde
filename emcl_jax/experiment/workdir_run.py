"""A run config trained in its own folders of a work directory
(`train_and_evaluate`, as flax's examples do it): resume, refuse a finished
run, feed the metric writers, store `results.json`."""

import json
import os
import shutil
from typing import Any, Callable, Optional

from emcl_jax import configs
from emcl_jax.experiment import train
from emcl_jax.reporting import writers
from emcl_jax.training import multihost
from emcl_jax.training import workdir


class RunExistsError(ValueError):
  """A finished run asked again without overwrite, or a run folder that
  holds another config."""


def train_and_evaluate(
    config: configs.RunConfig, workdir_root: Optional[str] = None, *,
    skip_finished: bool = False, together: Optional[bool] = None,
    echo: Optional[Callable[[str], None]] = None,
    on_results: Optional[Callable[[dict[str, Any], str], None]] = None,
) -> list[dict[str, Any]]:
  """Runs the seeds of `config`, each in its own folder of the work
  directory (`training.workdir`), and returns their results dictionaries.

  A run whose folder holds `results.json` is finished: it is refused with
  one line (`RunExistsError`) unless `config.output.overwrite` (start it
  over) or `skip_finished` (leave it; its results are not returned). A run
  with checkpoints but no results resumes from the latest task (its
  metrics files keep the tasks before it). Every task's record goes to the
  run's writers (`reporting.writers`: JSON lines, CSV, TensorBoard, the
  progress display, `echo`, as `config.output` says); at the end the final
  ACC, BWT, LA and, with TensorBoard, the accuracy matrix as an image.

  Args:
    config: the run (`configs.get_config`).
    workdir_root: the work directory (default: `config.output.workdir`).
    skip_finished: leave finished runs instead of refusing them.
    together: run the seeds as one vmapped program (default: when there are
      several), else one after another.
    echo: a line printer for every task's record (None: none).
    on_results: called with (results, path) after each results.json.

  Raises:
    RunExistsError: a finished run, without overwrite or skip_finished.
    workdir.RunLockedError: another process is running one of the runs.
    ValueError (ConfigError): bad configuration. DataError: bad data.
    NonFiniteLossError: the loss diverged (no results file then).
  """
  config = configs.resolve(config)
  root = workdir_root or config.output.workdir
  name = config.output.name or config.method.name
  flat = configs.flat(config)
  chash = workdir.config_hash(config.dataset, config.method.name, flat)
  folder = lambda seed: workdir.run_dir(  # noqa: E731
      root, config.dataset, name, chash, seed)
  seeds = config.seed_list
  overwrite = config.output.overwrite
  locks = ([workdir.RunLock(folder(s)) for s in seeds]
           if workdir.is_primary() else [])
  try:
    for lock in locks:
      lock.acquire()
    # Looked for under the locks: a run that finished meanwhile counts.
    finished = [s for s in seeds
                if os.path.exists(os.path.join(folder(s), workdir.RESULTS))]
    if finished and not (overwrite or skip_finished):
      raise RunExistsError(
          f'{os.path.join(folder(finished[0]), workdir.RESULTS)} exists: '
          f'{config.dataset} {name} seed {finished[0]} is finished; pass '
          '--overwrite to run it again')
    todo = list(seeds) if overwrite else [s for s in seeds
                                          if s not in finished]
    check_configs(todo, folder, flat, overwrite)
    if together is None:
      together = len(seeds) > 1
    groups = consecutive(todo) if together else [[s] for s in todo]
    out = []
    for group in groups:
      group_config = configs.schema.override(
          config, {'seed': group[0], 'seeds': len(group)})
      out += _run_group(root, group_config, name, chash, flat, folder,
                        together=together, echo=echo, on_results=on_results)
    return out
  finally:
    for lock in locks:
      lock.release()
    for s in seeds if workdir.is_primary() else ():
      prune_empty(folder(s), root)


def consecutive(seeds: list[int]) -> list[list[int]]:
  """`seeds` cut into runs of consecutive seeds (a config names a seed
  range): [0, 2, 3] -> [[0], [2, 3]]."""
  groups: list[list[int]] = []
  for seed in seeds:
    if groups and seed == groups[-1][-1] + 1:
      groups[-1].append(seed)
    else:
      groups.append([seed])
  return groups


def check_configs(todo, folder, flat, overwrite):
  """Refuses a run folder that holds another config; clears the progress
  of runs started over."""
  for seed in todo:
    config_path = os.path.join(folder(seed), workdir.CONFIG)
    if os.path.exists(config_path) and not overwrite:
      saved = workdir.read_json(config_path, 'run config')
      if saved.get('config') != json.loads(json.dumps(flat)):
        raise RunExistsError(f'{config_path} holds another config; delete '
                             'the folder or pass --overwrite')
    if overwrite and workdir.is_primary():
      workdir.remove_progress(folder(seed))


class RunWriters:
  """The writers of a group of seeds, opened when the first task is
  reported (so a run refused before it leaves no files)."""

  def __init__(self, config, name, chash, flat, folder, keep, echo):
    self.config, self.name, self.chash, self.flat = config, name, chash, flat
    self.folder, self.keep, self.echo = folder, keep, echo
    self.per_seed: list[writers.MultiWriter] = []

  def open(self):
    """Writes each run's config.json and opens its writers."""
    out, dataset = self.config.output, self.config.dataset
    method = self.config.method.name
    for seed in self.config.seed_list:
      ws, folder = [], self.folder(seed)
      if workdir.is_primary():
        workdir.write_json(os.path.join(folder, workdir.CONFIG), {
            'dataset': dataset, 'method': method, 'name': self.name,
            'seed': seed, 'config': self.flat, 'config_hash': self.chash})
        ws.append(writers.JsonLinesWriter(
            os.path.join(folder, workdir.METRICS), keep_steps=self.keep))
        if out.csv:
          ws.append(writers.CsvWriter(
              os.path.join(folder, workdir.METRICS_CSV),
              keep_steps=self.keep))
        if out.tensorboard:
          ws.append(writers.TensorBoardWriter(folder))
      if self.echo is not None:
        ws.append(writers.ConsoleWriter(
            self.echo, f'{dataset} {self.name} seed {seed} '))
      self.per_seed.append(writers.MultiWriter(ws))
      self.per_seed[-1].write_hparams({'dataset': dataset, 'method': method,
                                       'name': self.name, 'seed': seed,
                                       **self.flat})

  def record(self, record, several):
    if not self.per_seed:
      self.open()
    for i, w in enumerate(self.per_seed):
      w.write_scalars(record.task + 1, writers.task_scalars(
          record, i if several else None))

  def finish(self, runs):
    """The final metrics and, with TensorBoard, the accuracy matrix."""
    if not self.per_seed:  # every task was restored from the checkpoint
      self.open()
    for seed, w, res in zip(self.config.seed_list, self.per_seed, runs):
      t = len(res['accuracy_matrix'])
      w.write_scalars(t, {'final/acc': res['acc'], 'final/bwt': res['bwt'],
                          'final/la': res['la']})
      if self.config.output.tensorboard and workdir.is_primary():
        from emcl_jax.reporting import figures  # matplotlib only here
        w.write_images(t, {'accuracy_matrix': figures.heatmap_image(
            res['accuracy_matrix'],
            f'{self.config.dataset} {self.name} seed {seed}')})

  def close(self):
    for w in self.per_seed:
      w.close()


def _run_group(root, config, name, chash, flat, folder, *, together, echo,
               on_results):
  """Trains the seeds of `config` (one program when several) in their
  folders; returns their results (see `train_and_evaluate`)."""
  primary = workdir.is_primary()
  seeds, out = config.seed_list, config.output
  ckpt_dir = (workdir.checkpoint_dir(root, config.dataset, name, chash, seeds)
              if out.checkpoint else None)
  if out.overwrite and primary and ckpt_dir and os.path.isdir(ckpt_dir):
    shutil.rmtree(ckpt_dir)  # started over: no resume
  # Several processes: the others look at the folder once process 0 has
  # cleared what it clears.
  multihost.barrier(f'emcl_jax:start:{chash}:{seeds[0]}')
  latest = None if ckpt_dir is None else workdir.latest_checkpoint(ckpt_dir)
  run_writers = RunWriters(config, name, chash, flat, folder,
                            None if latest is None else latest + 1, echo)
  label = f'{config.dataset} {name} ' + (
      f'seed {seeds[0]}' if len(seeds) == 1 else
      f'seeds {seeds[0]}-{seeds[-1]}')
  shown = writers.ProgressWriter(label) if out.progress else None

  def record_fn(record):
    run_writers.record(record, len(seeds) > 1)
    if shown is not None:
      shown.write_scalars(record.task + 1, writers.task_scalars(record))

  try:
    runs = train.run(config, record_fn=record_fn,
                     batch_fn=None if shown is None else shown.batch,
                     checkpoint_dir=ckpt_dir, resume=latest is not None,
                     together=together)
    run_writers.finish(runs)
  finally:
    run_writers.close()
    if shown is not None:
      shown.close()
  for seed, res in zip(seeds, runs):
    path = os.path.join(folder(seed), workdir.RESULTS)
    if primary:
      workdir.write_json(path, res)
    if on_results is not None:
      on_results(res, path)
  if primary and ckpt_dir is not None and os.path.isdir(ckpt_dir):
    shutil.rmtree(ckpt_dir)  # finished: its results are written
    prune_empty(os.path.dirname(ckpt_dir), root)
  return runs


def prune_empty(path: str, root: str) -> None:
  """Removes `path` and then its parents while they are empty folders, up to
  (not including) `root`."""
  root = os.path.abspath(root)
  path = os.path.abspath(path)
  while path.startswith(root + os.sep) and os.path.isdir(path):
    if os.listdir(path):
      break
    os.rmdir(path)
    path = os.path.dirname(path)
