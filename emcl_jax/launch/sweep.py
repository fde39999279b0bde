r"""Runs a grid of settings x seeds and tabulates them.

  python experiments/sweep.py --workdir=sweeps/mnist \
      --grid='method=lamaml | method.beta=0.03,0.1;method.r=0.02,0.05'
  python experiments/sweep.py --grid_file=my_grid.py --seeds=5

--grid: alternatives separated by '|', each a product of axes separated by
';', each axis `path=v1,v2,...`: `method` (the method's name) or a setting
of the run config, as run.py's --config.PATH (`method.beta`,
`data.num_tasks`; a bare `beta` is `method.beta`). Values are typed as the
setting is. --set adds fixed values to every setting
(`--set='method.meta_clip=2.0'`); --method is the method of the settings
that name none. --grid_file: a Python file whose `get_grid()` returns a
list of dicts, one setting each, or a --grid string (experiments/grids/
holds the study's). The short flags and --config.PATH=VALUE of run.py apply
to every setting.

Each (setting, seed) is a run folder of the work directory --workdir,
{workdir}/{dataset}/{setting}/{config_hash}/seed{seed}/ (as run.py's, with
the same config hash as run.py gives that setting): the setting is named by
the values it sets, and the config hash keeps apart runs made with other
values, so a table never mixes settings. A rerun skips the finished runs
and resumes unfinished ones, and a setting whose loss diverged is recorded
as such ({config_hash}/diverged.txt) and not retried. The seeds of a
setting run as one vmapped program (--parallel_seeds), so a setting's
training seconds are those of all its seeds together; settings run one
after another in one process, which makes their seconds comparable.
Progress: a line per setting (i of N) and the per-task display on stderr.

Prints, and writes to {workdir}/{dataset}/table.md (table-size=TxN.md for a
shrunk benchmark), a Markdown table sorted by mean ACC: ACC / BWT / LA mean
+- std over the seeds, and training seconds. --shard=i/n runs every n-th
setting only (for parallel processes over one folder); a last run without
--shard writes the table.
"""

import os
import shlex
import sys
from typing import Any, Optional

from absl import flags
from absl import logging
import numpy as np

from emcl_jax import configs
from emcl_jax import experiment
from emcl_jax.errors import DataError, NonFiniteLossError
from emcl_jax.launch import cli
from emcl_jax.launch import distributed
from emcl_jax.launch import run_flags
from emcl_jax.reporting import tables
from emcl_jax.sweeps import expand, load_grid_file, parse_axes, parse_grid
from emcl_jax.sweeps import setting_name, table
from emcl_jax.training import workdir

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    ' | '.join(configs.BENCHMARKS))
flags.DEFINE_string('method', 'emcl', 'Method of settings that name none.')
flags.DEFINE_string('grid', None, "Settings: 'method.beta=0.03,0.1;"
                    "method.r=1 | method=lamaml'.")
flags.DEFINE_string('grid_file', None, 'Python file with get_grid() -> '
                    'list of dicts or a --grid string (instead of --grid).')
flags.DEFINE_string('set', None, "Values for every setting: "
                    "'method.meta_clip=2.0;data.num_tasks=5'.")
flags.DEFINE_string('workdir', 'sweeps', 'Work directory: root of the run '
                    'folders.')
flags.DEFINE_alias('output_dir', 'workdir')
flags.DEFINE_string('shard', None, 'i/n: run settings i, i+n, ... only.')
flags.DEFINE_string('table', None, 'Where the Markdown table goes '
                    '(default {workdir}/{dataset}/table.md).')
flags.DEFINE_bool('run', True, 'Run missing settings (false: table only).')


def build(method: str, values: dict[str, Any]) -> configs.RunConfig:
  """The resolved run config of one setting (the command line's, then the
  setting's values, then --config.PATH=VALUE)."""
  seeds = run_flags.seeds(5)
  return cli.run_config(FLAGS.dataset, method, {
      'seed': seeds[0], 'seeds': len(seeds), 'output.workdir': FLAGS.workdir,
      **values})


def run_setting(setting: dict[str, Any], config: configs.RunConfig
                ) -> Optional[str]:
  """Runs the seeds of `setting` that are not finished; returns an error
  message if the loss diverged, else None."""
  name = setting_name(setting)
  marker = os.path.join(_setting_dir(name, config), 'diverged.txt')
  if os.path.exists(marker):
    with open(marker) as f:
      return f.read().strip()
  if not FLAGS.run:
    return None
  try:
    experiment.train_and_evaluate(
        configs.schema.replace(config, 'output.name', name),
        skip_finished=True, together=FLAGS.parallel_seeds)
  except NonFiniteLossError as e:
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, 'w') as f:
      f.write(str(e).splitlines()[0] + '\n')
    return str(e)
  return None


def _setting_dir(name: str, config: configs.RunConfig) -> str:
  chash = workdir.config_hash(config.dataset, config.method.name,
                              configs.flat(config))
  return workdir.setting_dir(FLAGS.workdir, config.dataset, name, chash)


def summarize(setting: dict[str, Any], config: configs.RunConfig,
              error: Optional[str]) -> dict[str, Any]:
  """Mean and std over the seeds' results files of one setting."""
  folder = _setting_dir(setting_name(setting), config)
  runs = []
  for seed in config.seed_list:
    path = os.path.join(folder, f'seed{seed}', workdir.RESULTS)
    if os.path.exists(path):
      runs.append(tables.read_results(path))
  row = {'setting': setting_name(setting), 'seeds': len(runs),
         'diverged': error is not None}
  for key in ('acc', 'bwt', 'la'):
    values = np.array([r[key] for r in runs]) if runs else np.array([np.nan])
    row[key] = (float(values.mean()), float(values.std()))
  row['train_seconds'] = (max(r['train_seconds'] for r in runs) if runs
                          else float('nan'))
  return row


def _settings() -> list[tuple[dict[str, Any], configs.RunConfig]]:
  """Every distinct setting of --grid / --grid_file and --set, checked."""
  if (FLAGS.grid is None) == (FLAGS.grid_file is None):
    raise ValueError('give exactly one of --grid and --grid_file')
  settings = (parse_grid(FLAGS.grid) if FLAGS.grid is not None
              else load_grid_file(FLAGS.grid_file))
  fixed = {}
  for path, values in parse_axes(FLAGS.set or ''):
    if len(values) != 1:
      raise ValueError(f'--set {path} takes one value, got {len(values)}; '
                       'put several values in --grid')
    fixed[path] = values[0]
  return expand(settings, fixed, FLAGS.method, build)


def _shard() -> tuple[int, int]:
  if not FLAGS.shard:
    return 0, 1
  try:
    shard, count = (int(x) for x in FLAGS.shard.split('/'))
    assert 0 <= shard < count
  except (ValueError, AssertionError):
    raise ValueError(f'--shard={FLAGS.shard} is not i/n with 0 <= i < n'
                     ) from None
  return shard, count


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # cli.parse_flags refused any argument left over
  try:
    settings = _settings()
    shard, count = _shard()
    rows = []
    for i, (setting, config) in enumerate(settings):
      if i % count != shard:
        continue
      sys.stderr.write(f'setting {i + 1} of {len(settings)}: '
                       f'{setting_name(setting)}\n')
      error = run_setting(setting, config)
      row = summarize(setting, config, error)
      sys.stderr.write(f"{row['setting']}: ACC {row['acc'][0]:.2f}"
                       f"{' (diverged)' if error else ''}\n")
      rows.append(row)
  except (ValueError, DataError) as e:
    cli.fail(str(e))
  except OSError as e:
    cli.fail(f'cannot write under {FLAGS.workdir}: {e.strerror or e}; '
             'choose a writable --workdir')
  if FLAGS.shard:
    return
  _write_table(rows, settings[0][1])


def _write_table(rows, config):
  command = 'python experiments/sweep.py ' + ' '.join(
      shlex.quote(a) for a in sys.argv[1:]
      if not a.startswith(('--table', '--run', '--norun', '--shard')))
  text = table(rows, command)
  table_name = 'table.md'
  if FLAGS.num_tasks or FLAGS.samples_per_task:
    table_name = (f'table-size={FLAGS.num_tasks or "all"}x'
                  f'{FLAGS.samples_per_task or "all"}.md')
  path = FLAGS.table or os.path.join(FLAGS.workdir, config.dataset,
                                     table_name)
  try:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  except OSError as e:
    cli.fail(f'cannot write the table {path}: {e.strerror or e}; choose a '
             'writable --table or --workdir')
  print(text, end='')


def entry():
  """The console script `emcl-sweep` (and `python experiments/sweep.py`)."""
  distributed.start(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
