"""A config's run folders, as one object (`RunFolders`) that every reader
and writer of a work directory uses: the run's name, config hash and
folders, {root}/{dataset}/{name}/{config_hash}/seed{seed}/, their locks,
the checks before a run (finished, another config), the metric writers,
results.json and the divergence marker."""

import contextlib
import json
import os
from typing import Any, Callable, Iterator, Optional, Sequence

from emcl_jax import configs
from emcl_jax import files
from emcl_jax.reporting import tables
from emcl_jax.reporting import writers
from emcl_jax.training import multihost
from emcl_jax.training import workdir

DIVERGED = 'diverged.txt'


class RunExistsError(ValueError):
  """A finished run asked again without overwrite, or a run folder that
  holds another config."""


class RunFolders:
  """The folders of one config's seeds under a work directory `root`.

  Attributes:
    config: the resolved config.
    name: the run's label, its folder under the dataset (`output.name`,
      else the method's name).
    flat: `configs.flat(config)`, the `config` entry of its files.
    chash: the config hash, the folder under the name.
    setting_dir: {root}/{dataset}/{name}/{chash}.
  """

  def __init__(self, config: configs.RunConfig, root: str):
    self.config, self.root = config, root
    self.name = config.output.name or config.method.name
    self.flat = configs.flat(config)
    self.chash = workdir.config_hash(config.dataset, config.method.name,
                                     self.flat)
    self.setting_dir = workdir.setting_dir(root, config.dataset, self.name,
                                           self.chash)

  def folder(self, seed: int) -> str:
    """The folder of one seed's run."""
    return os.path.join(self.setting_dir, f'seed{seed}')

  def results_path(self, seed: int) -> str:
    return os.path.join(self.folder(seed), workdir.RESULTS)

  def checkpoint_dir(self, seeds: Sequence[int]) -> str:
    """The checkpoints of `seeds` run as one program."""
    return workdir.checkpoint_dir(self.root, self.config.dataset, self.name,
                                  self.chash, seeds)

  def finished(self) -> list[int]:
    """The seeds with a results file."""
    return [s for s in self.config.seed_list
            if os.path.exists(self.results_path(s))]

  def results(self) -> list[dict[str, Any]]:
    """The finished seeds' results dictionaries (each file checked)."""
    return [tables.read_results(self.results_path(s))
            for s in self.finished()]

  def started(self) -> bool:
    """A seed finished, diverged or saved progress."""
    return bool(self.diverged() or self.finished() or os.path.exists(
        os.path.join(self.setting_dir, workdir.CHECKPOINTS)) or any(
            os.path.exists(os.path.join(self.folder(s), workdir.CHECKPOINTS))
            for s in self.config.seed_list))

  def diverged(self) -> Optional[str]:
    """The recorded divergence message, or None."""
    marker = os.path.join(self.setting_dir, DIVERGED)
    if not os.path.exists(marker):
      return None
    with open(marker) as f:
      return f.read().strip()

  def mark_diverged(self, message: str) -> str:
    """Records that the config diverged (not retried); returns `message`."""
    if workdir.is_primary():  # process 0 of several writes it
      files.write_file(os.path.join(self.setting_dir, DIVERGED),
                       message.splitlines()[0] + '\n')
    return message

  @contextlib.contextmanager
  def locked(self) -> Iterator[None]:
    """Holds every seed's run lock (process 0 of several); on the way out
    removes the folders left empty."""
    locks = ([workdir.RunLock(self.folder(s)) for s in self.config.seed_list]
             if workdir.is_primary() else [])
    try:
      for lock in locks:
        lock.acquire()
      yield
    finally:
      for lock in locks:
        lock.release()
      for s in self.config.seed_list if workdir.is_primary() else ():
        files.prune_empty(self.folder(s), self.root)

  def check(self, seeds: Sequence[int], *, refuse_finished: bool) -> None:
    """Refuses (`RunExistsError`) a finished seed of `seeds` with
    `refuse_finished`, and a folder that holds another config, unless
    `output.overwrite`; with it, clears their progress."""
    overwrite = self.config.output.overwrite
    for seed in seeds:
      path = self.results_path(seed)
      if refuse_finished and not overwrite and os.path.exists(path):
        try:
          tables.read_results(path)
        except ValueError as e:
          raise RunExistsError(
              f'{e}; or pass --config.output.overwrite=true to run '
              f'{self.config.dataset} {self.name} seed {seed} again'
          ) from None
        raise RunExistsError(
            f'{path} exists: {self.config.dataset} {self.name} seed {seed} '
            'is finished; pass --config.output.overwrite=true to run it '
            'again')
      config_path = os.path.join(self.folder(seed), workdir.CONFIG)
      if os.path.exists(config_path) and not overwrite:
        saved = workdir.read_json(config_path, 'run config')
        if saved.get('config') != json.loads(json.dumps(self.flat)):
          raise RunExistsError(f'{config_path} holds another config; delete '
                               'the folder or pass '
                               '--config.output.overwrite=true')
      if overwrite and workdir.is_primary():
        workdir.remove_progress(self.folder(seed))

  def writers(self, seeds: Sequence[int], keep: Optional[int],
              echo: Optional[Callable[[str], None]]) -> 'RunWriters':
    """The metric writers of `seeds` (`keep`: the steps of a resumed run's
    files to keep)."""
    return RunWriters(self, seeds, keep, echo)

  def write_results(self, runs: Sequence[dict[str, Any]],
                    on_results: Optional[Callable[[dict[str, Any], str],
                                                  None]] = None) -> None:
    """Each seed's results.json (process 0), then `on_results`."""
    for res in runs:
      path = self.results_path(res['seed'])
      if workdir.is_primary():
        files.write_json(path, res)
      if on_results is not None:
        on_results(res, path)


class RunWriters:
  """The writers of a group of seeds, opened when the first task is
  reported (so a run refused before it leaves no files)."""

  def __init__(self, run: RunFolders, seeds: Sequence[int],
               keep: Optional[int], echo: Optional[Callable[[str], None]]):
    self.run, self.seeds, self.keep, self.echo = run, list(seeds), keep, echo
    self.per_seed: list[writers.MultiWriter] = []

  def open(self) -> None:
    """Writes each run's config.json and opens its writers."""
    run, out = self.run, self.run.config.output
    dataset, method = run.config.dataset, run.config.method.name
    for seed in self.seeds:
      ws, folder = [], run.folder(seed)
      if workdir.is_primary():
        files.write_json(os.path.join(folder, workdir.CONFIG), {
            'dataset': dataset, 'method': method, 'name': run.name,
            'seed': seed, 'config': run.flat, 'config_hash': run.chash})
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
            self.echo, f'{dataset} {run.name} seed {seed} '))
      self.per_seed.append(writers.MultiWriter(ws))
      self.per_seed[-1].write_hparams({'dataset': dataset, 'method': method,
                                       'name': run.name, 'seed': seed,
                                       **run.flat})

  def record(self, record: Any, several: bool) -> None:
    """One task's record (`engine.TaskRecord`, [S] rows when `several`)."""
    if not self.per_seed:
      self.open()
    for i, w in enumerate(self.per_seed):
      w.write_scalars(record.task + 1, writers.task_scalars(
          record, i if several else None))

  def finish(self, runs: Sequence[dict[str, Any]]) -> None:
    """The final metrics and, with TensorBoard, the accuracy matrix."""
    if not self.per_seed:  # every task was restored from the checkpoint
      self.open()
    config = self.run.config
    for seed, w, res in zip(self.seeds, self.per_seed, runs):
      t = len(res['accuracy_matrix'])
      w.write_scalars(t, {'final/acc': res['acc'], 'final/bwt': res['bwt'],
                          'final/la': res['la'],
                          **({'final/val_acc': res['val_acc']}
                             if 'val_acc' in res else {})})
      if config.output.tensorboard and workdir.is_primary():
        from emcl_jax.reporting import figures  # matplotlib only here
        w.write_images(t, {'accuracy_matrix': figures.heatmap_image(
            res['accuracy_matrix'],
            f'{config.dataset} {self.run.name} seed {seed}')})

  def close(self) -> None:
    for w in self.per_seed:
      w.close()


def barrier(run: RunFolders, seeds: Sequence[int]) -> None:
  """Several processes: the others look at the folders once process 0 has
  cleared what it clears."""
  multihost.barrier(f'emcl_jax:start:{run.chash}:{seeds[0]}')


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
