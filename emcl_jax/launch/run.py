r"""Runs one continual-learning experiment and writes its results JSON.

  python experiments/run.py                      # EMCL, MNIST Permutations,
                                                 # bundled offline data
  python experiments/run.py --dataset=cifar100 --method=emcl
  python experiments/run.py --dataset=many_permutations --method=mer \
      --config.method.beta=0.1 --seeds=5         # seeds 0-4, one program
  python experiments/run.py --method=lamaml --print_config

A run is one typed config (emcl_jax/configs/): the benchmark's values for
--dataset and --method, then --config FILE, the short flags, and any
--config.PATH=VALUE (`--print_config` lists every PATH with its value and
meaning). Each run gets its own folder,
{workdir}/{dataset}/{name}/{config_hash}/seed{seed}/, holding config.json,
results.json (schema in emcl_jax/experiment/results.py), metrics.jsonl and
metrics.csv (one record per task), TensorBoard events (--tensorboard) and,
while it runs, checkpoints/ (saved after every task). The same command
again resumes an unfinished run and refuses a finished one unless
--overwrite. Prints one summary line per run. Progress goes to stderr: a
bar on a terminal, a line every 10 s otherwise. Bad input ends with one
line on stderr and exit code 2; a diverging loss with exit code 1; no
results file then.
"""

from absl import flags
from absl import logging
import numpy as np

from emcl_jax import configs
from emcl_jax import experiment
from emcl_jax.launch import cli
from emcl_jax.launch import distributed
from emcl_jax.launch import run_flags
from emcl_jax.reporting import tables

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    ' | '.join(configs.BENCHMARKS))
flags.DEFINE_string('method', 'emcl', ' | '.join(experiment.METHODS))
flags.DEFINE_string('workdir', 'runs', 'Root of the run folders '
                    '({workdir}/{dataset}/{name}/{config_hash}/seed{seed}/)'
                    ' = --config.output.workdir.')
flags.DEFINE_alias('output_dir', 'workdir')
flags.DEFINE_bool('overwrite', False, 'Run a finished run again (its folder '
                  'is started over) = --config.output.overwrite.')
flags.DEFINE_string('name', None, 'Label of the run, its folder under the '
                    'dataset (default: the method) = --config.output.name.')
flags.DEFINE_bool('verbose', False, 'Print a line after every task.')
flags.DEFINE_bool('overlap_eval', False, 'Evaluate task t on a second '
                  'thread while task t+1 trains (one seed; same results, '
                  'less wall time) = --config.output.overlap_eval.')


def config_from_flags() -> configs.RunConfig:
  """The run config of the command line."""
  seeds = run_flags.seeds(1)
  return cli.run_config(FLAGS.dataset, FLAGS.method, {
      'seed': seeds[0], 'seeds': len(seeds), 'output.workdir': FLAGS.workdir,
      **cli.given({'overwrite': 'output.overwrite', 'name': 'output.name',
                   'verbose': 'output.verbose',
                   'overlap_eval': 'output.overlap_eval'})})


def main(argv):
  logging.set_verbosity(logging.ERROR)  # keep library chatter off stderr
  del argv  # cli.parse_flags refused any argument left over
  with cli.failing(workdir=FLAGS.workdir):
    config = config_from_flags()
    if FLAGS.print_config:
      cli.print_config(config)
      return
    if config.seeds > 1 and config.output.overlap_eval:
      raise ValueError('--overlap_eval applies to one seed; drop it or '
                       '--seeds')
    runs = experiment.train_and_evaluate(
        config, together=FLAGS.parallel_seeds and config.seeds > 1,
        echo=print if config.output.verbose else None,
        on_results=_print_run)
  if len(runs) > 1:
    mean_std = lambda k: (  # noqa: E731
        f'{np.mean([r[k] for r in runs]):.2f}+-'
        f'{np.std([r[k] for r in runs]):.2f}')
    line = ' '.join(f'{k.upper()}={mean_std(k)}' for k in tables.METRICS
                    if k in runs[0])
    print(f"{len(runs)} seeds: {line} "
          f"train_s={runs[0]['train_seconds']:.2f} (all seeds together)")


def _print_run(results, path):
  values = ' '.join(f'{k.upper()}={results[k]:.2f}' for k in tables.METRICS
                    if k in results)
  print(f"{results['dataset']} {results['name']} seed={results['seed']} "
        f"{values} train_s={results['train_seconds']:.2f} -> {path}")


def entry():
  """The console script `emcl-run` (and `python experiments/run.py`)."""
  distributed.start(main, __doc__, __name__)


if __name__ == '__main__':
  entry()
