r"""Runs the paper's protocol over datasets x methods x seeds and writes its
tables and figures.

  python experiments/reproduce.py --datasets=mnist_permutations \
      --methods=emcl,lamaml,finetune --seeds=5
  python experiments/reproduce.py --methods=emcl,emcl_gd,emcl_lr_modulation,\
emcl_si --seeds=5                                  # Table IV's ablations

Writes, under --workdir:
  runs/{dataset}/{name}/{config_hash}/seed{s}/   one folder per run, as
                                          run.py's (results.json, config.json,
                                          metrics.jsonl, metrics.csv, events
                                          with output.tensorboard)
  table_iii.md                            Table III: ACC +- std, BWT +- std,
                                          training seconds, every run name
                                          (a shrunk benchmark marked)
  table_iv_{dataset}.md                   Table IV: EMCL's ablations present
  figures/fig{1,2,3}_{dataset}.png        Fig. 1 (ACC/BWT bars, average
                                          accuracy as tasks are learned),
                                          Fig. 2 (training time), Fig. 3
                                          (ACC against training time)
  figures/heatmap_{dataset}_{name}.png    accuracy matrix, mean over seeds
  figures/runs/heatmap_{dataset}_{name}_seed{s}.png   one per run

Re-running with the same --workdir skips the finished runs, resumes the
unfinished ones, and redraws the tables and figures from the runs asked
for: a run is keyed by (dataset, name, config hash, seed), so runs made
with other settings (another benchmark size, model or hyper-parameter) are
never mixed into a table. Nor is a table of other settings overwritten:
the tables and figures of another set of runs go beside it, named by that
set's key (table_iii-KEY.md, table_iv_{dataset}-KEY.md, figures-KEY/); the
paths are printed. The missing seeds of a method run as one vmapped
program (its training seconds are then those of all its seeds together,
marked in Table III); --noparallel_seeds runs them one after another, each
timed alone.

--methods takes every method name of run.py, Table IV's ablations among
them (emcl_gd, emcl_lr_modulation, emcl_si). --config.PATH=VALUE applies
to every run (a method setting to every method, which must take it): the same run gets the same config hash as in
run.py and sweep.py.

--launcher=submitit_local | slurm runs the (dataset, method) programs as
--jobs submitit jobs (job j: programs j, j+N, ..., as --shard=j/N) on this
machine or a SLURM cluster, waits for them and writes the tables and
figures (--nowait: returns once they are submitted); docs/cluster.md.
--print_config prints every run's resolved config and hash and writes
nothing.
"""

import os
import time
from typing import Optional, Sequence

from absl import flags
from absl import logging

from emcl_jax import runner
from emcl_jax import files
from emcl_jax.launch import cli
from emcl_jax.launch import distributed
from emcl_jax.launch import launcher
from emcl_jax.launch import options
from emcl_jax.reporting import figures
from emcl_jax.reporting import tables
from emcl_jax.training import workdir

FLAGS = flags.FLAGS


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # the parser refused any argument left over
  with cli.failing(workdir=FLAGS.workdir):
    options.seeds()
    if FLAGS.columns is not None:
      tables.check_columns(FLAGS.columns)
    runs_dir = os.path.join(FLAGS.workdir, 'runs')
    # Every config first: a bad setting stops the script before any run.
    plan = [cli.run_config(d, m, {'output.workdir': runs_dir})
            for d in FLAGS.datasets for m in FLAGS.methods]
    if FLAGS.print_config:
      for config in plan:
        print(f'# {config.dataset} {config.method.name}')
        cli.print_config(config)
      return
    kwargs = dict(batch_settings=False, keep_going=False,
                  together=FLAGS.parallel_seeds)
    ran = launcher.launch(plan, runs_dir, len(plan), kwargs)
    if ran is None:
      return  # --nowait: the jobs go on
    t0 = time.perf_counter()

    def on_program(p, count, names):
      del count
      config = plan[p]
      done = runner.RunFolders(config, runs_dir).finished()
      if done and FLAGS.run:
        print(f'{config.dataset} {names[0]}: seeds {done} done already, '
              'skipped')

    def report(res, path):
      del path
      print(f"{res['dataset']} {res['name']} seed={res['seed']} "
            f"ACC={res['acc']:.2f} BWT={res['bwt']:.2f} "
            f"train_s={res['train_seconds']:.2f} "
            f'(wall {time.perf_counter() - t0:.1f} s)')

    outcomes = runner.sweep(
        plan, runs_dir, shard=launcher.shard(FLAGS.shard),
        run=FLAGS.run and not ran, on_program=on_program,
        on_results=report, **kwargs)
    if FLAGS.shard or not workdir.is_primary():
      return  # process 0 of several writes the report
    results = [r for o in outcomes for r in o.results]
    written = write_report(results, FLAGS.workdir, FLAGS.methods,
                           columns=FLAGS.columns)
  for path in written:
    print(f'wrote {path}')


def write_report(results: Sequence[dict], output_dir: str,
                 first: Sequence[str] = (),
                 columns: Optional[Sequence[str]] = None) -> list[str]:
  """Table III, Table IV per dataset with EMCL results, and every figure,
  from `results`; returns the paths. Table III's rows: the run names
  `first` (in that order), then any others."""
  if not results:
    raise ValueError('no results to report')
  rows = tables.aggregate(results)
  curves = tables.aggregate_curves(results)
  present = [r.name for r in rows]
  names = list(dict.fromkeys([n for n in first if n in present] + present))
  rows = sorted(rows, key=lambda r: names.index(r.name))  # figures' order
  # Tables and figures of other settings (sizes, seeds, values) that are
  # already there are kept: these go beside them, named by their key.
  key = tables.settings_key([
      (r['dataset'], r.get('name', r['method']), workdir.results_hash(r),
       r['seed']) for r in results])
  base = os.path.join(output_dir, 'table_iii.md')
  suffix = '' if tables.unclaimed(base, key) == base else f'-{key}'
  written = [files.write_file(
      os.path.join(output_dir, f'table_iii{suffix}.md'), tables.keyed(
          tables.table_iii(rows, names=names, columns=columns), key))]
  for dataset in tables.datasets_of(rows):
    if any(r.dataset == dataset and r.name in tables.TABLE_IV_NAMES
           for r in rows):
      written.append(files.write_file(
          os.path.join(output_dir, f'table_iv_{dataset}{suffix}.md'),
          tables.keyed(tables.table_iv(rows, dataset), key)))
  figure_dir = os.path.join(output_dir, f'figures{suffix}')
  written += figures.figures(rows, curves, figure_dir,
                             heatmap_names=[r.name for r in rows])
  for res in results:
    if len(res['accuracy_matrix']) == len(res['accuracy_matrix'][0]):
      stem = f"{res['dataset']}_{res['name']}_seed{res['seed']}"
      written.append(figures.heatmap(
          res['accuracy_matrix'],
          os.path.join(figure_dir, 'runs', f'heatmap_{stem}.png'),
          f"{figures.dataset_label(res['dataset'])}: "
          f"{figures.label(res['name'])}, seed {res['seed']}"))
  return written


def entry():
  """The console script `emcl-reproduce` (and
  `python experiments/reproduce.py`)."""
  distributed.start(main, __doc__, 'reproduce')


if __name__ == '__main__':
  entry()
