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
as such ({config_hash}/diverged.txt) and not retried.

Settings that differ only in numeric method settings (EMCL's beta, r, lam,
...; La-MAML's alpha_init, opt_lr; an SGD lr; EWC's lam) run as one
program, the hyper-parameters traced and the settings x seeds vmapped and
sharded over the devices (--batch_settings, at most --group_size settings
a program; docs/api.md, "Grids of settings as one program"): each setting's results equal its solo
run's to float reassociation and land in the same folders. A setting that
diverges is marked alone; the others of its program finish. Its training
seconds are those of the whole program. A grid program keeps no per-task
checkpoints: one stopped runs again. --batch_settings=false runs every
setting on its own: its seeds as one vmapped program (--parallel_seeds),
settings one after another in one process, which makes their seconds
comparable. Progress: a line per program (group i of N, its settings), the
per-task display on stderr, and the settings done so far.

Prints, and writes to {workdir}/{dataset}/table.md (table-size=TxN.md for a
shrunk benchmark), a Markdown table sorted by mean ACC: ACC / BWT / LA mean
+- std over the seeds, and training seconds. --shard=i/n runs every n-th
program only (for parallel processes over one folder); a last run without
--shard writes the table.

--launcher=submitit_local | slurm runs the programs as --jobs submitit jobs
(job j: programs j, j+N, ..., as --shard=j/N) on this machine or a SLURM
cluster, waits for them and writes the table (--nowait: returns once they
are submitted); docs/cluster.md.
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
from emcl_jax.errors import NonFiniteLossError
from emcl_jax.experiment import grid_run
from emcl_jax.launch import cli
from emcl_jax.launch import distributed
from emcl_jax.launch import launcher
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
flags.DEFINE_string('shard', None, 'i/n: run programs i, i+n, ... only '
                    '(no table).')
flags.DEFINE_string('table', None, 'Where the Markdown table goes '
                    '(default {workdir}/{dataset}/table.md).')
flags.DEFINE_bool('run', True, 'Run missing settings (false: table only).')
flags.DEFINE_bool('batch_settings', True, 'Run settings that differ only in '
                  'numeric method settings as one program (hyper-parameters '
                  'traced); false: each setting on its own.')
flags.DEFINE_integer('group_size', 16, 'At most this many settings in one '
                     'program (--batch_settings).', lower_bound=1)


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
    return _mark_diverged(setting, config, str(e))
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


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # cli.parse_flags refused any argument left over
  with cli.failing(workdir=FLAGS.workdir):
    settings = _settings()
    if workdir.is_primary():  # unwritable: one line, before any progress
      os.makedirs(FLAGS.workdir, exist_ok=True)
    shard, count = launcher.shard(FLAGS.shard)
    programs = (grid_run.groups([c for _, c in settings],
                                max_size=FLAGS.group_size)
                if FLAGS.batch_settings
                else [[i] for i in range(len(settings))])
    if not launcher.launch('sweep', len(programs), FLAGS.workdir):
      return
    rows, done = [], 0
    for p, group in enumerate(programs):
      if p % count != shard:
        continue
      members = [settings[i] for i in group]
      sys.stderr.write(f'group {p + 1} of {len(programs)}: '
                       + ', '.join(setting_name(s) for s, _ in members) + '\n')
      errors = run_group(members, f'group {p + 1} of {len(programs)}')
      for (setting, config), error in zip(members, errors):
        row = summarize(setting, config, error)
        sys.stderr.write(f"{row['setting']}: ACC {row['acc'][0]:.2f}"
                         f"{' (diverged)' if error else ''}\n")
        rows.append(row)
      done += len(group)
      sys.stderr.write(f'settings done: {done} of {len(settings)}\n')
  if FLAGS.shard:
    return
  _write_table(rows, settings[0][1])


def run_group(members: list[tuple[dict[str, Any], configs.RunConfig]],
              label: str) -> list[Optional[str]]:
  """Runs one program's settings: those not started yet together (a grid
  program) when there are several, the others (finished, diverged or with
  saved progress) on their own (`run_setting`: skip or resume). Returns each
  setting's divergence message or None."""
  fresh = [i for i, (s, c) in enumerate(members) if _is_fresh(s, c)]
  if not FLAGS.run or len(fresh) < 2:
    fresh = []
  errors: list[Optional[str]] = [None] * len(members)
  if fresh:
    named = [configs.schema.replace(members[i][1], 'output.name',
                                    setting_name(members[i][0]))
             for i in fresh]
    runs = grid_run.train_and_evaluate_grid(
        named, FLAGS.workdir, label=f'{named[0].dataset} {label}')
    for i, res in zip(fresh, runs):
      if res is None:
        errors[i] = _mark_diverged(
            *members[i], 'the loss became NaN or infinite in a grid program')
  for i, (setting, config) in enumerate(members):
    if i not in fresh:
      errors[i] = run_setting(setting, config)
  return errors


def _is_fresh(setting: dict[str, Any], config: configs.RunConfig) -> bool:
  """No seed of the setting finished, diverged or saved progress."""
  folder = _setting_dir(setting_name(setting), config)
  return not (os.path.exists(os.path.join(folder, 'diverged.txt'))
              or os.path.exists(os.path.join(folder, workdir.CHECKPOINTS))
              or any(os.path.exists(os.path.join(folder, f'seed{s}', name))
                     for s in config.seed_list
                     for name in (workdir.RESULTS, workdir.CHECKPOINTS)))


def _mark_diverged(setting, config, message: str) -> str:
  """Records that `setting` diverged (not retried by later sweeps)."""
  marker = os.path.join(_setting_dir(setting_name(setting), config),
                        'diverged.txt')
  if not workdir.is_primary():
    return message  # process 0 of several writes it
  os.makedirs(os.path.dirname(marker), exist_ok=True)
  with open(marker, 'w') as f:
    f.write(message.splitlines()[0] + '\n')
  return message


def _write_table(rows, config):
  if not workdir.is_primary():
    return  # process 0 of several writes and prints it
  command = 'python experiments/sweep.py ' + ' '.join(
      shlex.quote(a) for a in sys.argv[1:]
      if not a.startswith(('--table', '--run', '--norun', '--shard'))
      and not launcher.is_launcher_flag(a)
      and not distributed.is_process_flag(a))
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
  distributed.start(main, __doc__, __name__, extra=(launcher.__name__,))


if __name__ == '__main__':
  entry()
