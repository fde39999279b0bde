"""Run configs x seeds in a work directory, grouped into programs: the one
entry every launch script (run, sweep, reproduce) and a submitit job calls.

  outcomes = runner.sweep(run_configs, 'sweeps')
  results = runner.train_and_evaluate(config, 'runs')  # one config

Configs that differ only in numeric method settings run as one grid
program (`programs`, at most `group_size` a program); any other config is
a program of its own, its seeds one vmapped program. Each config keeps the
folders of its solo run (`folders.RunFolders`): a finished run is skipped
(or refused, `skip_finished=False`), an unfinished one resumes from its
per-task checkpoints, and with `keep_going` a config whose loss diverged
is recorded as such ({setting folder}/diverged.txt) and not retried. A
grid program keeps no checkpoints: one that is stopped runs again. Bad
input raises (never exits): the launch scripts map errors to exit codes
(`launch.cli`).
"""

import contextlib
import os
import shutil
import sys
from typing import Any, Callable, NamedTuple, Optional, Sequence

import numpy as np

from emcl_jax import configs
from emcl_jax import files
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.runner import train
from emcl_jax.runner.train import static_part
from emcl_jax.runner.folders import RunFolders, barrier, consecutive
from emcl_jax.reporting import writers
from emcl_jax.training import workdir

Echo = Optional[Callable[[str], None]]
OnResults = Optional[Callable[[dict[str, Any], str], None]]


class Outcome(NamedTuple):
  """What became of one config.

  Attributes:
    config: the resolved config.
    results: its finished seeds' results dictionaries, read back from
      their folders (in seed order).
    error: the loss's divergence message, or None.
  """
  config: configs.RunConfig
  results: list[dict[str, Any]]
  error: Optional[str]


def programs(run_configs: Sequence[configs.RunConfig], *,
             batch_settings: bool = True,
             group_size: int = 16) -> list[list[int]]:
  """The indices of `run_configs` cut into programs: with `batch_settings`,
  configs of equal `static_part` share one (at most `group_size`, in the
  order given); every other config is its own."""
  out: list[list[int]] = []
  keys: list[Any] = []
  for i, config in enumerate(run_configs):
    key = static_part(config) if batch_settings else i
    for group, other in zip(out, keys):
      if other == key and len(group) < group_size:
        group.append(i)
        break
    else:
      out.append([i])
      keys.append(key)
  return out


def report_program(index: int, count: int, names: list[str]) -> None:
  """An `on_program` that writes `group {index + 1} of {count}: {names}` on
  stderr (what sweep.py and its submitit jobs show)."""
  sys.stderr.write(f'group {index + 1} of {count}: {", ".join(names)}\n')


def sweep(run_configs: Sequence[configs.RunConfig], root: str, *,
          batch_settings: bool = True, group_size: int = 16,
          shard: tuple[int, int] = (0, 1), run: bool = True,
          skip_finished: bool = True, keep_going: bool = True,
          together: bool = True, echo: Echo = None,
          on_program: Optional[Callable[[int, int, list[str]], None]] = None,
          on_results: OnResults = None) -> list[Outcome]:
  """Runs the configs' missing seeds in their folders under `root` and
  returns what became of each config of this shard.

  Args:
    run_configs: the configs, each named (`output.name`) as its folder
      should be; resolved here.
    root: the work directory.
    batch_settings, group_size: see `programs`.
    shard: (i, n): run programs i, i+n, ... only.
    run: False: run nothing, report the finished seeds.
    skip_finished: leave finished runs (False: refuse them, as run.py
      does, unless `output.overwrite`).
    keep_going: record a diverged config and go on (False: raise
      NonFiniteLossError).
    together: run a config's several seeds as one vmapped program.
    echo: a line printer for every task's record.
    on_program: called with (program index, number of programs, its
      configs' names) before each program runs.
    on_results: called with (results, path) after each results.json.

  Returns:
    One `Outcome` per config of the shard's programs, in program order.

  Raises:
    ValueError (ConfigError, RunExistsError, RunLockedError): bad input.
    DataError: bad data. NonFiniteLossError: a loss diverged, without
    `keep_going`.
  """
  run_configs = [configs.resolve(c) for c in run_configs]
  # A run refused or failed before it wrote leaves no empty --workdir.
  with (files.kept_only_if_used(root) if workdir.is_primary()
        else contextlib.nullcontext()):
    groups = programs(run_configs, batch_settings=batch_settings,
                      group_size=group_size)
    index, count = shard
    out = []
    for p, group in enumerate(groups):
      if p % count != index:
        continue
      runs = [RunFolders(run_configs[i], root) for i in group]
      if on_program is not None:
        on_program(p, len(groups), [r.name for r in runs])
      fresh = ([r for r in runs if not r.started()]
               if run and len(runs) > 1 else [])
      if len(fresh) > 1:
        _train_grid(fresh, f'{run_configs[group[0]].dataset} group {p + 1} '
                    f'of {len(groups)}', echo, on_results)
      for r in runs:
        if not run or (len(fresh) > 1 and r in fresh) or r.diverged():
          continue
        try:
          _train(r, skip_finished=skip_finished, together=together, echo=echo,
                 on_results=on_results)
        except NonFiniteLossError as e:
          if not keep_going:
            raise
          r.mark_diverged(str(e))
      out += [Outcome(r.config, r.results(), r.diverged()) for r in runs]
    return out


def train_and_evaluate(config: configs.RunConfig,
                       root: Optional[str] = None, *,
                       skip_finished: bool = False,
                       together: Optional[bool] = None, echo: Echo = None,
                       on_results: OnResults = None) -> list[dict[str, Any]]:
  """Runs the seeds of one config in their folders of the work directory
  `root` (default `config.output.workdir`), as flax's examples do it, and
  returns the results of the seeds it ran (`sweep` of one config; a
  finished run is refused unless `skip_finished` or `output.overwrite`;
  `together`: default, when there are several seeds)."""
  config = configs.resolve(config)
  return _train(RunFolders(config, root or config.output.workdir),
                skip_finished=skip_finished,
                together=config.seeds > 1 if together is None else together,
                echo=echo, on_results=on_results)


def _train(run: RunFolders, *, skip_finished: bool, together: bool,
           echo: Echo, on_results: OnResults) -> list[dict[str, Any]]:
  """Trains the unfinished seeds of `run`, consecutive seeds as one
  program when `together` (else one by one), each group resuming from its
  checkpoints; writes and returns their results."""
  with run.locked():
    # Looked for under the locks: a run that finished meanwhile counts.
    overwrite = run.config.output.overwrite
    todo = [s for s in run.config.seed_list
            if overwrite or s not in run.finished()]
    run.check(todo if skip_finished else run.config.seed_list,
              refuse_finished=not skip_finished)
    out = []
    for seeds in consecutive(todo) if together else [[s] for s in todo]:
      out += _train_seeds(run, seeds, together, echo, on_results)
    return out


def _train_seeds(run, seeds, together, echo, on_results):
  """One program of `run`'s `seeds` (`train.run`), with its checkpoints,
  writers and progress display."""
  config = configs.schema.override(run.config, {'seed': seeds[0],
                                                'seeds': len(seeds)})
  primary = workdir.is_primary()
  ckpt_dir = run.checkpoint_dir(seeds) if config.output.checkpoint else None
  if config.output.overwrite and primary and ckpt_dir and os.path.isdir(
      ckpt_dir):
    shutil.rmtree(ckpt_dir)  # started over: no resume
  barrier(run, seeds)
  latest = None if ckpt_dir is None else workdir.latest_checkpoint(ckpt_dir)
  run_writers = run.writers(seeds, None if latest is None else latest + 1,
                            echo)
  label = f'{config.dataset} {run.name} ' + (
      f'seed {seeds[0]}' if len(seeds) == 1 else
      f'seeds {seeds[0]}-{seeds[-1]}')
  shown = writers.ProgressWriter(label) if config.output.progress else None

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
  run.write_results(runs, on_results)
  if primary and ckpt_dir is not None and os.path.isdir(ckpt_dir):
    shutil.rmtree(ckpt_dir)  # finished: its results are written
    files.prune_empty(os.path.dirname(ckpt_dir), run.root)
  return runs


def _train_grid(runs: list[RunFolders], label: str, echo: Echo,
                on_results: OnResults) -> None:
  """Trains configs alike but for numeric method fields, none started, as
  one program (`train.run_grid`), each setting's seeds in the folders of
  its solo run; their training seconds are the whole program's (results
  record `grid_settings`). A setting whose loss diverged is marked; the
  others finish."""
  with contextlib.ExitStack() as stack:
    for r in runs:
      stack.enter_context(r.locked())
    for r in runs:
      r.check(r.config.seed_list, refuse_finished=True)
    run_writers = [r.writers(r.config.seed_list, None, echo) for r in runs]
    shown = (writers.ProgressWriter(label)
             if runs[0].config.output.progress else None)

    def record_fn(record):
      for g, w in enumerate(run_writers):
        w.record(_pick(record, g), True)
      if shown is not None:
        shown.write_scalars(record.task + 1, writers.task_scalars(record))

    try:
      results = train.run_grid([r.config for r in runs], record_fn=record_fn,
                               batch_fn=None if shown is None else shown.batch)
      for r, w, res in zip(runs, run_writers, results):
        if res is None:
          r.mark_diverged('the loss became NaN or infinite in a grid program')
        else:
          w.finish(res)
          r.write_results(res, on_results)
    finally:
      for w in run_writers:
        w.close()
      if shown is not None:
        shown.close()


def _pick(record: Any, g: int) -> Any:
  """Setting g's rows of a grid program's task record."""
  pick = lambda a: None if a is None else np.asarray(a)[g]  # noqa: E731
  return record._replace(
      loss=pick(record.loss), accuracy=pick(record.accuracy),
      accuracy_class=pick(record.accuracy_class),
      val_accuracy=pick(record.val_accuracy))
