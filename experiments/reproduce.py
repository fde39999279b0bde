r"""Runs the paper's protocol over datasets x methods x seeds and writes its
tables and figures.

  python experiments/reproduce.py --datasets=mnist_permutations \
      --methods=emcl,lamaml,finetune --seeds=5
  python experiments/reproduce.py --methods=emcl,emcl_gd,emcl_lr_modulation,\
emcl_si --seeds=5                                  # Table IV's ablations

Writes, under --output_dir:
  results/{dataset}_{name}_seed{s}.json   one results file per run (schema in
                                          emcl_jax/experiment.py)
  logs/*.jsonl, tensorboard/              per-task metrics (JSON lines always,
                                          TensorBoard with --tensorboard)
  table_iii.md                            Table III: ACC +- std, BWT +- std,
                                          training seconds, every run name
  table_iv_{dataset}.md                   Table IV: EMCL's ablations present
  figures/fig{1,2,3}_{dataset}.png        Fig. 1 (ACC/BWT bars, average
                                          accuracy as tasks are learned),
                                          Fig. 2 (training time), Fig. 3
                                          (ACC against training time)
  figures/heatmap_{dataset}_{name}.png    accuracy matrix, mean over seeds
  figures/runs/heatmap_{dataset}_{name}_seed{s}.png   one per run

Re-running with the same --output_dir skips the runs whose results file is
there already (with the same benchmark size and model; a different one is
an error, not a silent mix) and redraws the tables and figures from every
results file of the folder. Seeds run one after another, each timed alone;
--parallel_seeds runs the missing seeds of a method as one vmapped program
(then its training seconds are those of all its seeds together, marked in
Table III).

--methods takes the method names of run.py and the ablation names of
Table IV: emcl_gd (--inner=gd) and emcl_lr_modulation
(--inner=lr_modulation).
"""

import json
import os
import sys
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from emcl_jax import configs
from emcl_jax import data
from emcl_jax import experiment
from emcl_jax.reporting import figures
from emcl_jax.reporting import tables
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


def completed(path: str, expect: dict) -> bool:
  """Whether the results file `path` exists, made with the setup `expect`
  (config entries); raises ValueError for a foreign or unreadable file."""
  if not os.path.exists(path):
    return False
  try:
    with open(path) as f:
      res = json.load(f)
    config = res['config']
  except (OSError, ValueError, KeyError) as e:
    raise ValueError(f'{path} is not a readable results file ({e}); delete '
                     'it to run it again') from None
  for key, value in expect.items():
    if value is not None and config.get(key) != value:
      raise ValueError(
          f'{path} was made with {key}={config.get(key)!r}, not {value!r}; '
          'use another --output_dir or delete the file')
  return True


def main(argv):
  logging.set_verbosity(logging.ERROR)
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; flags take the form --name=value')
  try:
    if FLAGS.seeds < 1:
      raise ValueError(f'--seeds must be >= 1, got {FLAGS.seeds}')
    for d in FLAGS.datasets:
      if d not in configs.BENCHMARKS:
        raise ValueError(f'unknown dataset {d!r}; use one of '
                         f'{", ".join(configs.BENCHMARKS)}')
    specs = {name: run_spec(name) for name in FLAGS.methods}
    seeds = list(range(FLAGS.seed, FLAGS.seed + FLAGS.seeds))
    results_dir = os.path.join(FLAGS.output_dir, 'results')
    for dataset in FLAGS.datasets:
      for name, (method, overrides) in specs.items():
        _run(dataset, name, method, overrides, seeds, results_dir)
    written = write_report(results_dir, FLAGS.output_dir, FLAGS.methods)
  except (ValueError, DataError) as e:
    _fail(str(e))
  except NonFiniteLossError as e:
    _fail(str(e), code=1)
  for path in written:
    print(f'wrote {path}')


def _run(dataset, name, method, overrides, seeds, results_dir):
  """Runs the seeds of one (dataset, name) that have no results file yet."""
  default_tasks, default_samples = data.BENCHMARKS[dataset]
  model = FLAGS.model or configs.get_config(dataset, FLAGS.config)['model']
  if FLAGS.norm not in (None, 'group'):
    model += f'(norm={FLAGS.norm})'
  expect = {
      'num_tasks': FLAGS.num_tasks or default_tasks,
      'samples_per_task': FLAGS.samples_per_task or default_samples,
      'model': model}
  todo = [s for s in seeds if not completed(
      experiment.results_path(results_dir, dataset, name, s), expect)]
  if len(todo) < len(seeds):
    done = sorted(set(seeds) - set(todo))
    print(f'{dataset} {name}: seeds {done} done already, skipped')
  if not todo:
    return
  kwargs = dict(overrides=overrides, num_tasks=FLAGS.num_tasks,
                samples_per_task=FLAGS.samples_per_task,
                data_source=FLAGS.data_source, data_dir=FLAGS.data_dir,
                name=name, config_file=FLAGS.config, model=FLAGS.model,
                norm=FLAGS.norm)
  groups = [todo] if FLAGS.parallel_seeds and len(todo) > 1 else [
      [s] for s in todo]
  for group in groups:
    t0 = time.perf_counter()
    with experiment.run_log(FLAGS.output_dir, dataset, name, group,
                            tensorboard=FLAGS.tensorboard,
                            progress=FLAGS.progress) as log:
      logging_fns = dict(log_fn=log,
                         batch_fn=log.batch if FLAGS.progress else None)
      if len(group) > 1:
        runs = experiment.run_seeds(dataset, method, group, **logging_fns,
                                    **kwargs)
      else:
        runs = [experiment.run(dataset, method, group[0], **logging_fns,
                               **kwargs)]
    for res in runs:
      experiment.write_results(res, results_dir)
      print(f"{dataset} {name} seed={res['seed']} ACC={res['acc']:.2f} "
            f"BWT={res['bwt']:.2f} train_s={res['train_seconds']:.2f} "
            f'(wall {time.perf_counter() - t0:.1f} s)')


def write_report(results_dir: str, output_dir: str,
                 first: Sequence[str] = ()) -> list[str]:
  """Table III, Table IV per dataset with EMCL results, and every figure,
  from all the results files of `results_dir`; returns the paths. Table
  III's rows: the run names `first` (in that order), then any others."""
  results = tables.load(results_dir)
  if not results:
    raise ValueError(f'no results files in {results_dir}')
  rows = tables.aggregate(results)
  curves = tables.aggregate_curves(results)
  present = [r.name for r in rows]
  names = list(dict.fromkeys([n for n in first if n in present] + present))
  rows = sorted(rows, key=lambda r: names.index(r.name))  # figures' order
  written = [_write_text(os.path.join(output_dir, 'table_iii.md'),
                         tables.table_iii(rows, names=names))]
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


def _fail(message: str, code: int = 2):
  sys.stderr.write(f'error: {message}\n')
  sys.exit(code)


if __name__ == '__main__':
  app.run(main)
