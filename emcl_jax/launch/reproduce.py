r"""Runs the paper's protocol over datasets x methods x seeds and writes its
tables and figures.

  python experiments/reproduce.py --datasets=mnist_permutations \
      --methods=emcl,lamaml,finetune --seeds=5
  python experiments/reproduce.py --methods=emcl,emcl_gd,emcl_lr_modulation,\
emcl_si --seeds=5                                  # Table IV's ablations

Writes, under --output_dir:
  runs/{dataset}/{name}/{config_hash}/seed{s}/   one folder per run, as
                                          run.py's (results.json, config.json,
                                          metrics.jsonl, metrics.csv, events
                                          with --tensorboard)
  table_iii.md                            Table III: ACC +- std, BWT +- std,
                                          training seconds, every run name
  table_iv_{dataset}.md                   Table IV: EMCL's ablations present
  figures/fig{1,2,3}_{dataset}.png        Fig. 1 (ACC/BWT bars, average
                                          accuracy as tasks are learned),
                                          Fig. 2 (training time), Fig. 3
                                          (ACC against training time)
  figures/heatmap_{dataset}_{name}.png    accuracy matrix, mean over seeds
  figures/runs/heatmap_{dataset}_{name}_seed{s}.png   one per run

Re-running with the same --output_dir skips the finished runs, resumes the
unfinished ones, and redraws the tables and figures from the runs asked
for: a run is keyed by (dataset, name, config hash, seed), so runs made
with other settings (another benchmark size, model or hyper-parameter) are
never mixed into a table. Seeds run one after another, each timed alone;
--parallel_seeds runs the missing seeds of a method as one vmapped program
(then its training seconds are those of all its seeds together, marked in
Table III).

--methods takes the method names of run.py and the ablation names of
Table IV: emcl_gd (--inner=gd) and emcl_lr_modulation
(--inner=lr_modulation).
"""

import os
import time
from typing import Optional, Sequence

from absl import flags
from absl import logging

from emcl_jax.launch import cli
from emcl_jax import configs
from emcl_jax import experiment
from emcl_jax.reporting import figures
from emcl_jax.reporting import tables
from emcl_jax.training import workdir
from emcl_jax.errors import DataError, NonFiniteLossError

FLAGS = flags.FLAGS
flags.DEFINE_list('datasets', ['mnist_permutations'],
                  ', '.join(configs.BENCHMARKS))
flags.DEFINE_list('methods', ['emcl', 'lamaml', 'finetune'],
                  'Run names: methods of run.py and the ablations '
                  'emcl_gd, emcl_lr_modulation.')
flags.DEFINE_integer('seeds', 5, 'Seeds seed..seed+N-1 per method.')
flags.DEFINE_integer('seed', 0, 'The first seed.')
flags.DEFINE_string('output_dir', 'reproduce', 'Where everything goes.')
flags.DEFINE_alias('workdir', 'output_dir')
flags.DEFINE_bool('parallel_seeds', False, "Run a method's seeds as one "
                  'vmapped program (timed together).')
flags.DEFINE_string('data_dir', None, 'As run.py --data_dir.')
flags.DEFINE_string('data_source', 'auto', 'As run.py --data_source.')
flags.DEFINE_string('model', None, 'As run.py --model.')
flags.DEFINE_string('norm', None, 'As run.py --norm.')
flags.DEFINE_string('config', None, 'As run.py --config.')
flags.DEFINE_integer('num_tasks', None, 'Shrink the benchmarks: tasks.')
flags.DEFINE_integer('samples_per_task', None, 'Shrink: samples per task.')
flags.DEFINE_bool('tensorboard', False, 'Also write TensorBoard events.')
flags.DEFINE_bool('progress', True, 'Progress on stderr.')
flags.DEFINE_list('columns', None, 'Table III\'s metrics, from acc, bwt, '
                  'la, fwt, forgetting, acc_class, bwt_class (default: the '
                  'paper\'s ACC / BWT).')
flags.DEFINE_enum('eval', 'task', ['task', 'class', 'both'], 'As run.py '
                  '--eval (class-split benchmarks).')
flags.DEFINE_integer('epochs', 1, 'As run.py --epochs.')

# Run names beyond the methods: Table IV's ablations of EMCL.
ABLATIONS = {
    'emcl_gd': ('emcl', {'inner': 'gd'}),
    'emcl_lr_modulation': ('emcl', {'inner': 'lr_modulation'}),
}


def run_spec(name: str) -> tuple[str, dict]:
  """(method, hyper-parameter overrides) of a run name."""
  if name in ABLATIONS:
    return ABLATIONS[name]
  if name in experiment.METHODS:
    return name, {}
  raise ValueError(f'unknown method {name!r}; use one of '
                   f'{", ".join(list(experiment.METHODS) + list(ABLATIONS))}')


def main(argv):
  logging.set_verbosity(logging.ERROR)
  del argv  # cli.parse_flags refused any argument left over
  try:
    if FLAGS.seeds < 1:
      raise ValueError(f'--seeds must be >= 1, got {FLAGS.seeds}')
    for d in FLAGS.datasets:
      if d not in configs.BENCHMARKS:
        raise ValueError(f'unknown dataset {d!r}; use one of '
                         f'{", ".join(configs.BENCHMARKS)}')
    if FLAGS.columns is not None:
      tables.check_columns(FLAGS.columns)
    specs = {name: run_spec(name) for name in FLAGS.methods}
    seeds = list(range(FLAGS.seed, FLAGS.seed + FLAGS.seeds))
    runs_dir = os.path.join(FLAGS.output_dir, 'runs')
    results = []
    for dataset in FLAGS.datasets:
      for name, (method, overrides) in specs.items():
        results += _run(dataset, name, method, overrides, seeds, runs_dir)
    written = write_report(results, FLAGS.output_dir, FLAGS.methods,
                           columns=FLAGS.columns)
  except (ValueError, DataError) as e:
    cli.fail(str(e))
  except NonFiniteLossError as e:
    cli.fail(str(e), code=1)
  except OSError as e:
    cli.fail(f'cannot write under --output_dir={FLAGS.output_dir}: '
             f'{e.strerror or e}; choose a writable --output_dir')
  for path in written:
    print(f'wrote {path}')


def _run(dataset, name, method, overrides, seeds, runs_dir):
  """Runs the seeds of one (dataset, name) that are not finished; returns
  the results of all of them (read back from their folders)."""
  spec = dict(overrides=overrides, num_tasks=FLAGS.num_tasks,
              samples_per_task=FLAGS.samples_per_task,
              data_source=FLAGS.data_source, data_dir=FLAGS.data_dir,
              config_file=FLAGS.config, model=FLAGS.model, norm=FLAGS.norm,
              eval_mode=FLAGS.eval, epochs=FLAGS.epochs)
  chash = workdir.config_hash(dataset, method,
                              experiment.run_config(dataset, method, **spec))
  paths = {s: os.path.join(workdir.run_dir(runs_dir, dataset, name, chash, s),
                           workdir.RESULTS) for s in seeds}
  done = [s for s in seeds if os.path.exists(paths[s])]
  if done:
    print(f'{dataset} {name}: seeds {done} done already, skipped')
  t0 = time.perf_counter()

  def report(res, path):
    del path
    print(f"{dataset} {name} seed={res['seed']} ACC={res['acc']:.2f} "
          f"BWT={res['bwt']:.2f} train_s={res['train_seconds']:.2f} "
          f'(wall {time.perf_counter() - t0:.1f} s)')

  experiment.run_in_workdir(
      runs_dir, dataset, method, seeds, name=name, skip_finished=True,
      together=FLAGS.parallel_seeds, tensorboard=FLAGS.tensorboard,
      progress=FLAGS.progress, on_results=report, **spec)
  return [workdir.read_json(paths[s]) for s in seeds]


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
  written = [_write_text(os.path.join(output_dir, 'table_iii.md'),
                         tables.table_iii(rows, names=names,
                                          columns=columns))]
  for dataset in tables.datasets_of(rows):
    if any(r.dataset == dataset and r.name in tables.TABLE_IV_NAMES
           for r in rows):
      written.append(_write_text(
          os.path.join(output_dir, f'table_iv_{dataset}.md'),
          tables.table_iv(rows, dataset)))
  figure_dir = os.path.join(output_dir, 'figures')
  written += figures.figures(rows, curves, figure_dir,
                             heatmap_names=[r.name for r in rows])
  for res in results:
    if len(res['accuracy_matrix']) == len(res['accuracy_matrix'][0]):
      stem = f"{res['dataset']}_{res['name']}_seed{res['seed']}"
      written.append(figures.heatmap(
          res['accuracy_matrix'],
          os.path.join(figure_dir, 'runs', f'heatmap_{stem}.png'),
          f"{figures.DATASET_LABELS.get(res['dataset'], res['dataset'])}: "
          f"{figures.label(res['name'])}, seed {res['seed']}"))
  return written


def _write_text(path: str, text: str) -> str:
  """Writes `text` to `path` atomically (temp file, then rename)."""
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  tmp = path + '.tmp'
  with open(tmp, 'w') as f:
    f.write(text)
  os.replace(tmp, path)
  return path


def entry():
  """The console script `emcl-reproduce` (and `python experiments/reproduce.py`)."""
  cli.start(main, __doc__)


if __name__ == '__main__':
  entry()
