r"""Chooses every method's setting on held-out data with one budget, then
reports the chosen settings on fresh seeds.

  python experiments/selection.py --workdir=studies/selection \
      --datasets=mnist_permutations,many_permutations,mnist_rotations \
      --methods=emcl,lamaml,mer,er

1. Selection: every setting of --grid_file (default
   experiments/grids/selection.py: eight per method, the shipped values
   among them) on seeds --seed .. --seed+--seeds-1 (0-4), each task's
   training samples split 90/10 (`data.validation=0.1`, as La-MAML's
   scripts hold out), as grid programs of at most --group_size settings,
   under {workdir}/select/. For each (benchmark, method) the setting with
   the best mean validation ACC is chosen (the test numbers play no part).
2. Fresh seeds: each chosen setting on seeds --fresh_seed ..
   +--fresh_seeds-1 (10-19), the same split, under {workdir}/fresh/; beside
   EMCL's chosen setting and its shipped default, their `importance=none`
   controls (what the Taylor importance is worth).

Writes {workdir}/selection.md (and prints it): the selection table
(benchmark x method: settings tried, best validation ACC, the chosen
setting), the fresh-seed table (test ACC and BWT, mean +- std over the
fresh seeds), EMCL minus La-MAML seed by seed (mean +- std of the paired
differences) and the importance controls. The study is hours of CPU: a
rerun skips every finished run and resumes where it stopped; --stage=select
stops after the selection; --norun writes the tables of what has finished;
--print_config prints every setting's config and writes nothing.
"""

import os
from typing import Any, NamedTuple, Sequence

from absl import flags
from absl import logging
import numpy as np

from emcl_jax import configs
from emcl_jax import data as data_lib
from emcl_jax import files
from emcl_jax import runner
from emcl_jax.launch import cli
from emcl_jax.launch import grids
from emcl_jax.reporting import tables

FLAGS = flags.FLAGS
SCRIPT = cli.register(
    'selection', own=('stage', 'fresh_seed', 'fresh_seeds'),
    shared=('datasets', 'methods', 'seed', 'seeds', 'workdir', 'data_dir',
            'grid_file', 'group_size', 'run', 'print_config'),
    defaults={'workdir': 'studies/selection', 'seeds': 5,
              'datasets': ['mnist_permutations', 'many_permutations',
                           'mnist_rotations'],
              'methods': ['emcl', 'lamaml', 'mer', 'er'],
              'grid_file': os.path.join(os.path.dirname(__file__), 'grids',
                                        'selection.py'),
              'group_size': 4})
flags.DEFINE_enum('stage', 'all', ('select', 'all'), 'select: stop after '
                  'the selection runs; all: then the fresh seeds.')
flags.DEFINE_integer('fresh_seed', 10, 'The first fresh seed.', lower_bound=0)
flags.DEFINE_integer('fresh_seeds', 10, 'Number of fresh seeds.',
                     lower_bound=1)

VALIDATION = 0.1
CONTROL = {'method.importance': 'none'}


class Choice(NamedTuple):
  """A (benchmark, method)'s selection: how many settings ran to the end
  (of how many tried), the best one's name, config and mean +- std
  validation ACC and its mean test ACC over the selection seeds."""
  dataset: str
  method: str
  tried: int
  finished: int
  name: str
  config: Any
  val_acc: tuple[float, float]
  acc: float


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and population std."""
  values = np.asarray(values, np.float64)
  return float(values.mean()), float(values.std())


def choose(outcomes: Sequence[Any], seeds: int) -> list[Choice]:
  """The best setting of each (dataset, method) by mean validation ACC
  among the settings that finished all `seeds` seeds without diverging
  (`runner.Outcome`s of the selection), in order of first appearance.

  Raises:
    ValueError: an outcome whose results hold no validation ACC.
  """
  by: dict[tuple[str, str], list[Any]] = {}
  for o in outcomes:
    by.setdefault((o.config.dataset, o.config.method.name), []).append(o)
  out = []
  for (dataset, method), group in by.items():
    done = [o for o in group if o.error is None and len(o.results) == seeds]
    for o in done:
      if any('val_acc' not in r for r in o.results):
        raise ValueError(f'{o.config.output.name} has no validation ACC; '
                         'select on runs with data.validation > 0')
    if not done:
      continue
    best = max(done, key=lambda o: np.mean([r['val_acc']
                                            for r in o.results]))
    out.append(Choice(dataset, method, len(group), len(done),
                      best.config.output.name, best.config,
                      mean_std([r['val_acc'] for r in best.results]),
                      float(np.mean([r['acc'] for r in best.results]))))
  return out


def control(config: Any) -> Any:
  """EMCL's `importance=none` control of `config`, named after it."""
  return configs.schema.override(config, {
      **CONTROL, 'output.name': f'{config.output.name},importance=none'})


def fresh_configs(chosen: Sequence[Choice], defaults: dict[str, Any],
                  seed: int, seeds: int) -> list[Any]:
  """The fresh-seed runs: every chosen config on seeds seed..seed+seeds-1
  and, for EMCL, its control, the shipped default (`defaults[dataset]`,
  unless chosen) and the default's control."""
  out = []
  for c in chosen:
    batch = [c.config]
    if c.method == 'emcl':
      batch.append(control(c.config))
      default = defaults.get(c.dataset)
      if default is not None and (configs.flat(default)
                                  != configs.flat(c.config)):
        batch += [default, control(default)]
    out += [configs.schema.override(b, {'seed': seed, 'seeds': seeds})
            for b in batch]
  return out


def _by_name(outcomes):
  return {(o.config.dataset, o.config.output.name): o for o in outcomes}


def selection_table(chosen: Sequence[Choice], seeds: Sequence[int]) -> str:
  """Markdown: benchmark, method, settings tried (finished), best
  validation ACC, its test ACC, the chosen setting."""
  held = chosen[0].config.data.validation if chosen else VALIDATION
  lines = [f'Selection: validation ACC (mean +- std over seeds '
           f'{seeds[0]}-{seeds[-1]}, {held:.0%} of each task held '
           'out); the test ACC plays no part in the choice.', '']
  lines += tables.markdown_table(
      ['benchmark', 'method', 'settings (finished)', 'best val ACC',
       'its test ACC', 'chosen setting'],
      [[data_lib.label(c.dataset), c.method, f'{c.tried} ({c.finished})',
        f'{c.val_acc[0]:.2f} +- {c.val_acc[1]:.2f}', f'{c.acc:.2f}', c.name]
       for c in chosen])
  return '\n'.join(lines) + '\n'


def fresh_table(chosen: Sequence[Choice], outcomes: Sequence[Any],
                seeds: Sequence[int]) -> str:
  """Markdown: each chosen setting's test ACC and BWT on the fresh seeds;
  EMCL minus La-MAML paired by seed; the importance controls' cost."""
  found = _by_name(outcomes)
  head = (f'Fresh seeds {seeds[0]}-{seeds[-1]}: test ACC and BWT, mean +- '
          'std over the seeds.')
  pm = lambda ms, sign='': f'{ms[0]:{sign}.2f} +- {ms[1]:.2f}'  # noqa: E731
  body, acc_of = [], {}
  for c in chosen:
    o = found.get((c.dataset, c.name))
    runs = [] if o is None else o.results
    acc_of[c.dataset, c.method] = {r['seed']: r['acc'] for r in runs}
    cells = [data_lib.label(c.dataset), c.method, c.name, str(len(runs))]
    body.append(cells + ([pm(mean_std([r[k] for r in runs]))
                          for k in ('acc', 'bwt')] if runs
                         else ['not run', '-']))
  lines = [head, ''] + tables.markdown_table(
      ['benchmark', 'method', 'setting', 'seeds', 'ACC', 'BWT'], body)
  body = []
  for dataset in dict.fromkeys(c.dataset for c in chosen):
    emcl = acc_of.get((dataset, 'emcl'), {})
    lamaml = acc_of.get((dataset, 'lamaml'), {})
    both = sorted(set(emcl) & set(lamaml))
    if both:
      body.append([data_lib.label(dataset), str(len(both)), pm(mean_std(
          [emcl[s] - lamaml[s] for s in both]), '+')])
  lines += ['', 'EMCL minus La-MAML, test ACC paired by seed (mean +- std of '
            'the differences):', ''] + tables.markdown_table(
                ['benchmark', 'seeds', 'EMCL - La-MAML'], body)
  body = []
  for (dataset, name), o in found.items():
    ctrl = found.get((dataset, f'{name},importance=none'))
    if ctrl is None or not o.results or not ctrl.results:
      continue
    acc, cacc = (mean_std([r['acc'] for r in x.results]) for x in (o, ctrl))
    body.append([data_lib.label(dataset), name, pm(acc), pm(cacc),
                 f'{acc[0] - cacc[0]:+.2f}'])
  lines += ['', 'The importance controls (`importance=none`: hn held at its '
            'mean), test ACC:', ''] + tables.markdown_table(
                ['benchmark', 'setting', 'ACC', 'control ACC', 'cost'], body)
  return '\n'.join(lines) + '\n'


def selection_configs(datasets: Sequence[str], methods: Sequence[str],
                      grid_file: str) -> list[Any]:
  """Every setting of the grid file for every dataset, named by its values
  (`grids.setting_name`), with the validation split; methods outside
  `methods` are left out.

  Raises:
    ValueError (ConfigError): a bad grid file or setting.
  """
  grid = [s for s in grids.load_grid_file(grid_file)
          if s.get('method', 'emcl') in methods]
  if not grid:
    raise ValueError(f'--grid_file {grid_file} has no setting of --methods='
                     f'{",".join(methods)}')
  out = []
  for dataset in datasets:
    def build(method, values, dataset=dataset):
      return cli.run_config(dataset, method, {
          'data.validation': VALIDATION, **values})
    out += [configs.schema.replace(c, 'output.name', grids.setting_name(s))
            for s, c in grids.expand(grid, {}, 'emcl', build)]
  return out


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # the parser refused any argument left over
  with cli.failing(workdir=FLAGS.workdir):
    select_seeds = list(range(FLAGS.seed, FLAGS.seed + FLAGS.seeds))
    fresh_seeds = list(range(FLAGS.fresh_seed,
                             FLAGS.fresh_seed + FLAGS.fresh_seeds))
    if set(select_seeds) & set(fresh_seeds):
      raise ValueError('the fresh seeds overlap the selection seeds; give '
                       '--fresh_seed past --seed+--seeds-1')
    plan = selection_configs(FLAGS.datasets, FLAGS.methods, FLAGS.grid_file)
    if FLAGS.print_config:
      for config in plan:
        print(f'# {config.dataset} {config.output.name}')
        cli.print_config(config)
      return
    kwargs = dict(group_size=FLAGS.group_size, run=FLAGS.run,
                  on_program=runner.report_program)
    outcomes = runner.sweep(plan, os.path.join(FLAGS.workdir, 'select'),
                            **kwargs)
    chosen = choose(outcomes, FLAGS.seeds)
    text = selection_table(chosen, select_seeds)
    if FLAGS.stage == 'all':
      defaults = {d: cli.run_config(d, 'emcl', {
          'data.validation': VALIDATION, 'output.name': 'emcl,shipped'})
                  for d in FLAGS.datasets if 'emcl' in FLAGS.methods}
      fresh = runner.sweep(
          fresh_configs(chosen, defaults, FLAGS.fresh_seed,
                        FLAGS.fresh_seeds),
          os.path.join(FLAGS.workdir, 'fresh'), **kwargs)
      text += '\n' + fresh_table(chosen, fresh, fresh_seeds)
    path = files.write_file(os.path.join(FLAGS.workdir, 'selection.md'), text)
  print(text, end='')
  print(f'wrote {path}')


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
