r"""Runs a grid of settings x seeds and tabulates them.

  python experiments/sweep.py --workdir=sweeps/mnist \
      --grid='method=lamaml | method.beta=0.03,0.1;method.r=0.02,0.05'
  python experiments/sweep.py --grid_file=my_grid.py --seeds=5

--grid: alternatives separated by '|', each a product of axes separated by
';', each axis `path=v1,v2,...`: `method` (the method's name) or a setting
of the run config, as run.py's --config.PATH (`method.beta`,
`data.num_tasks`; a bare `beta` is `method.beta`). Values are typed as the
setting is. --set adds fixed values to every setting (part of each
setting's name: `--set='method.meta_clip=2.0'`); --method is the method of
the settings that name none. --grid_file: a Python file whose `get_grid()`
returns a list of dicts, one setting each (experiments/grids/ holds the
study's). --config.PATH=VALUE applies to every setting (a path the grid
varies cannot take one). --print_config prints every setting's resolved
config and hash, grouped into programs as they would run, and writes
nothing.

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

Prints, writes, and names the file it wrote: {workdir}/{dataset}/table.md
(table-size=TxN.md for a shrunk benchmark; where that file holds the table
of other settings, it is kept and this one goes beside it, -KEY added to
its name), a Markdown table ranked by mean validation ACC when the
settings hold out a validation split (--config.data.validation=0.1; its
own column), else by mean test ACC, saying which: ACC / BWT / LA mean +-
std over the seeds, and training seconds. --shard=i/n runs every n-th
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
from typing import Any

from absl import flags
from absl import logging

from emcl_jax import configs
from emcl_jax import runner
from emcl_jax import files
from emcl_jax.launch import cli
from emcl_jax.launch import distributed
from emcl_jax.launch import launcher
from emcl_jax.launch import options
from emcl_jax.launch.grids import expand, load_grid_file, parse_axes, parse_grid
from emcl_jax.launch.grids import setting_name, summarize, table
from emcl_jax.reporting import tables
from emcl_jax.training import workdir

FLAGS = flags.FLAGS


def settings() -> list[configs.RunConfig]:
  """Every distinct setting of --grid / --grid_file and --set as a resolved
  run config named by its values (`setting_name`), checked before anything
  runs.

  Raises:
    ValueError (ConfigError): bad grid or settings.
  """
  if (FLAGS.grid is None) == (FLAGS.grid_file is None):
    raise ValueError('give exactly one of --grid and --grid_file')
  grid = (parse_grid(FLAGS.grid) if FLAGS.grid is not None
          else load_grid_file(FLAGS.grid_file))
  fixed = {}
  for path, values in parse_axes(FLAGS.set or ''):
    if len(values) != 1:
      raise ValueError(f'--set {path} takes one value, got {len(values)}; '
                       'put several values in --grid')
    fixed[path] = values[0]
  given = cli.overrides()
  if FLAGS.config is not None and any('method' in s for s in grid):
    raise configs.ConfigError(
        f'--config={FLAGS.config} chooses the method and the grid has a '
        'method= axis; drop one (a grid over methods starts from '
        '--dataset)')
  for s in grid:
    both = sorted(set(s) & set(given))
    if both:
      raise configs.ConfigError(
          f'{both[0]} is set by the grid and by --config.{both[0]}; give '
          'it in one place')

  def build(method: str, values: dict[str, Any]) -> configs.RunConfig:
    return cli.run_config(FLAGS.dataset, method, values)

  return [configs.schema.replace(c, 'output.name', setting_name(s))
          for s, c in expand(grid, fixed, FLAGS.method, build)]


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # the parser refused any argument left over
  with cli.failing(workdir=FLAGS.workdir):
    options.seeds()
    run_configs = settings()
    groups = runner.programs(run_configs,
                                 batch_settings=FLAGS.batch_settings,
                                 group_size=FLAGS.group_size)
    if FLAGS.print_config:
      for p, group in enumerate(groups):
        print(f'# program {p + 1} of {len(groups)}: {len(group)} '
              'setting(s)')
        for i in group:
          print(f'## {run_configs[i].output.name}')
          cli.print_config(run_configs[i])
      return
    why = workdir.is_primary() and files.unwritable(FLAGS.workdir)
    if why:  # one line, before any progress
      cli.fail(f'cannot write under --workdir={FLAGS.workdir}: {why}; '
               'choose a writable --workdir')
    shard = launcher.shard(FLAGS.shard)
    kwargs = dict(batch_settings=FLAGS.batch_settings,
                  group_size=FLAGS.group_size,
                  together=FLAGS.parallel_seeds,
                  on_program=runner.report_program)
    with files.kept_only_if_used(FLAGS.workdir):  # jobs refused: no folder
      ran = launcher.launch(run_configs, FLAGS.workdir, len(groups), kwargs)
    if ran is None:
      return  # --nowait: the jobs go on
    outcomes = runner.sweep(
        run_configs, FLAGS.workdir, shard=shard, run=FLAGS.run and not ran,
        **kwargs)
    done = 0
    rows = []
    for outcome in outcomes:
      row = summarize(outcome)
      if FLAGS.run and not ran:
        done += 1
        sys.stderr.write(f"{row['setting']}: ACC {row['acc'][0]:.2f}"
                         f"{' (diverged)' if outcome.error else ''}\n"
                         f'settings done: {done} of {len(run_configs)}\n')
      rows.append(row)
    if FLAGS.shard:
      return
    _write_table(rows, run_configs)


def _write_table(rows, run_configs):
  if not workdir.is_primary():
    return  # process 0 of several writes and prints it
  config = run_configs[0]
  command = 'python experiments/sweep.py ' + ' '.join(
      shlex.quote(a) for a in sys.argv[1:]
      if not a.startswith(('--table', '--run', '--norun', '--shard'))
      and not launcher.is_launcher_flag(a)
      and not distributed.is_process_flag(a))
  text = table(rows, command)
  data = config.data
  table_name = 'table.md'
  if 'data.num_tasks' in cli.overrides() or (
      'data.samples_per_task' in cli.overrides()):
    table_name = (f'table-size={data.num_tasks or "all"}x'
                  f'{data.samples_per_task or "all"}.md')
  folders = [runner.RunFolders(c, FLAGS.workdir) for c in run_configs]
  key = tables.settings_key([(c.dataset, run.name, run.chash, c.seed_list)
                             for c, run in zip(run_configs, folders)])
  path = FLAGS.table or tables.unclaimed(
      os.path.join(FLAGS.workdir, config.dataset, table_name), key)
  try:
    files.write_file(path, tables.keyed(text, key))
  except OSError as e:
    cli.fail(f'cannot write the table {path}: {e.strerror or e}; choose a '
             'writable --table or --workdir')
  print(text, end='')
  print(f'wrote {path}')


def entry():
  """The console script `emcl-sweep` (and `python experiments/sweep.py`)."""
  distributed.start(main, __doc__, 'sweep')


if __name__ == '__main__':
  entry()
