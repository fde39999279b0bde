r"""Runs a grid of hyper-parameter settings x seeds and tabulates them.

  python experiments/sweep.py --output_dir=sweeps/mnist \
      --grid='method=lamaml | beta=0.03,0.1;r=0.02,0.05;glances=1,5'
  python experiments/sweep.py --grid_file=my_grid.py --seeds=5

--grid: alternatives separated by '|', each a product of axes separated by
';', each axis `name=v1,v2,...`. `name` is `method` or any hyper-parameter
flag of run.py (values are typed as that flag is). --set adds fixed values
to every setting (`--set='meta_clip=2.0'`); --method is the method of the
settings that do not name one. --grid_file: a Python file whose
`get_grid()` returns a list of dicts, one setting each, or a --grid
string (experiments/grids/ holds the study's).

Each (setting, seed) is a run folder of the work directory --output_dir,
{output_dir}/{dataset}/{setting}/{config_hash}/seed{seed}/ (as run.py's;
results schema in emcl_jax/experiment.py): the setting is named by the
values it sets, and the config hash (every hyper-parameter, the benchmark's
size, ...) keeps apart runs made with other values, so a table never mixes
settings. A rerun skips the finished runs and resumes unfinished ones, and
a setting whose loss diverged is recorded as such
({config_hash}/diverged.txt) and not retried. The seeds of a setting
run as one vmapped program (run.py --seeds), so a setting's training
seconds are those of all its seeds together; settings run one after
another in one process, which makes their seconds comparable.

Prints, and writes to {output_dir}/{dataset}/table.md (table-size=TxN.md
for a shrunk benchmark), a Markdown table
sorted by mean ACC: ACC / BWT / LA mean +- std over the seeds, and
training seconds. --shard=i/n runs every n-th setting only (for parallel
processes over one folder); a last run without --shard writes the table.
"""

import os
import shlex
import sys
from typing import Any, Optional, Sequence

from absl import flags
from absl import logging
import numpy as np

from emcl_jax.launch import cli
from emcl_jax import configs
from emcl_jax import experiment
from emcl_jax.sweeps import expand, load_grid_file, parse_axes, parse_grid
from emcl_jax.sweeps import setting_name, table
from emcl_jax.errors import DataError, NonFiniteLossError
from emcl_jax.training import workdir

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    ', '.join(configs.BENCHMARKS))
flags.DEFINE_string('method', 'emcl', 'Method of settings that name none.')
flags.DEFINE_string('grid', None, "Settings: 'a=1,2;b=3 | method=lamaml'.")
flags.DEFINE_string('grid_file', None, 'Python file with get_grid() -> '
                    'list of dicts or a --grid string (instead of --grid).')
flags.DEFINE_string('set', None, "Values for every setting: 'a=1;b=2'.")
flags.DEFINE_integer('seeds', 5, 'Seeds 0..N-1 per setting.')
flags.DEFINE_string('output_dir', 'sweeps', 'Work directory: root of the '
                    'run folders.')
flags.DEFINE_alias('workdir', 'output_dir')
flags.DEFINE_string('data_dir', None, 'As run.py --data_dir.')
flags.DEFINE_integer('num_tasks', None, 'Shrink the benchmark: tasks.')
flags.DEFINE_integer('samples_per_task', None, 'Shrink: samples per task.')
flags.DEFINE_string('shard', None, 'i/n: run settings i, i+n, ... only.')
flags.DEFINE_string('table', None, 'Where the Markdown table goes '
                    '(default {output_dir}/{dataset}/table.md).')
flags.DEFINE_bool('run', True, 'Run missing settings (false: table only).')

def _spec(setting: dict[str, Any], kwargs: dict[str, Any]):
  """(method, run_in_workdir arguments, config hash) of a setting."""
  method = setting['method']
  spec = dict(kwargs, overrides={k: v for k, v in setting.items()
                                 if k != 'method'})
  chash = workdir.config_hash(
      FLAGS.dataset, method, experiment.run_config(FLAGS.dataset, method,
                                                   **spec))
  return method, spec, chash


def run_setting(setting: dict[str, Any], root: str, seeds: Sequence[int],
                **kwargs) -> Optional[str]:
  """Runs the seeds of `setting` that are not finished under the work
  directory `root`; returns an error message if the loss diverged, else
  None."""
  method, spec, chash = _spec(setting, kwargs)
  name = setting_name(setting)
  marker = os.path.join(workdir.setting_dir(root, FLAGS.dataset, name, chash),
                        'diverged.txt')
  if os.path.exists(marker):
    with open(marker) as f:
      return f.read().strip()
  if not FLAGS.run:
    return None
  try:
    experiment.run_in_workdir(root, FLAGS.dataset, method, seeds, name=name,
                              skip_finished=True, together=True,
                              progress=False, **spec)
  except NonFiniteLossError as e:
    os.makedirs(os.path.dirname(marker), exist_ok=True)
    with open(marker, 'w') as f:
      f.write(str(e).splitlines()[0] + '\n')
    return str(e)
  return None


def summarize(setting: dict[str, Any], root: str, seeds: Sequence[int],
              error: Optional[str], **kwargs) -> dict[str, Any]:
  """Mean and std over the seeds' results files of one setting."""
  _, _, chash = _spec(setting, kwargs)
  runs = []
  for seed in seeds:
    path = os.path.join(workdir.run_dir(root, FLAGS.dataset,
                                        setting_name(setting), chash, seed),
                        workdir.RESULTS)
    if os.path.exists(path):
      runs.append(workdir.read_json(path))
  row = {'setting': setting_name(setting), 'seeds': len(runs),
         'diverged': error is not None}
  for key in ('acc', 'bwt', 'la'):
    values = np.array([r[key] for r in runs]) if runs else np.array([np.nan])
    row[key] = (float(values.mean()), float(values.std()))
  row['train_seconds'] = (max(r['train_seconds'] for r in runs) if runs
                          else float('nan'))
  return row


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # cli.parse_flags refused any argument left over
  try:
    if (FLAGS.grid is None) == (FLAGS.grid_file is None):
      raise ValueError('give exactly one of --grid and --grid_file')
    if FLAGS.seeds < 1:
      raise ValueError(f'--seeds must be >= 1, got {FLAGS.seeds}')
    settings = (parse_grid(FLAGS.grid) if FLAGS.grid is not None
                else load_grid_file(FLAGS.grid_file))
    fixed = {}
    for name, values in parse_axes(FLAGS.set or ''):
      if len(values) != 1:
        raise ValueError(f'--set {name} takes one value, got {len(values)}; '
                         'put several values in --grid')
      fixed[name] = values[0]
    settings = expand(settings, fixed, FLAGS.method, FLAGS.dataset)
    shard, count = 0, 1
    if FLAGS.shard:
      try:
        shard, count = (int(x) for x in FLAGS.shard.split('/'))
        assert 0 <= shard < count
      except (ValueError, AssertionError):
        raise ValueError(f'--shard={FLAGS.shard} is not i/n with 0 <= i < n'
                         ) from None
    seeds = list(range(FLAGS.seeds))
    root = FLAGS.output_dir
    table_name = 'table.md'
    if FLAGS.num_tasks or FLAGS.samples_per_task:
      table_name = (f'table-size={FLAGS.num_tasks or "all"}x'
                    f'{FLAGS.samples_per_task or "all"}.md')
    kwargs = dict(num_tasks=FLAGS.num_tasks,
                  samples_per_task=FLAGS.samples_per_task,
                  data_dir=FLAGS.data_dir)
    rows = []
    for i, setting in enumerate(settings):
      error = None
      if i % count == shard:
        error = run_setting(setting, root, seeds, **kwargs)
        row = summarize(setting, root, seeds, error, **kwargs)
        sys.stderr.write(f"{row['setting']}: ACC {row['acc'][0]:.2f}"
                         f"{' (diverged)' if error else ''}\n")
        rows.append(row)
  except (ValueError, DataError) as e:
    cli.fail(str(e))
  except OSError as e:
    cli.fail(f'cannot write under {FLAGS.output_dir}: {e.strerror or e}; '
             'choose a writable --output_dir')
  if FLAGS.shard:
    return
  command = 'python experiments/sweep.py ' + ' '.join(
      shlex.quote(a) for a in sys.argv[1:]
      if not a.startswith(('--table', '--run', '--norun', '--shard')))
  text = table(rows, command)
  path = FLAGS.table or os.path.join(root, FLAGS.dataset, table_name)
  try:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
  except OSError as e:
    cli.fail(f'cannot write the table {path}: {e.strerror or e}; choose a '
             'writable --table or --output_dir')
  print(text, end='')


def entry():
  """The console script `emcl-sweep` (and `python experiments/sweep.py`)."""
  cli.start(main, __doc__)


if __name__ == '__main__':
  entry()
