r"""Runs one continual-learning experiment and writes its results JSON.

  python experiments/run.py                      # EMCL, MNIST Permutations,
                                                 # bundled offline data
  python experiments/run.py --dataset=cifar100 --method=emcl
  python experiments/run.py --dataset=many_permutations --method=mer \
      --config.method.beta=0.1 --seeds=5         # seeds 0-4, one program
  python experiments/run.py --method=lamaml --print_config

A run is one typed config (emcl_jax/configs/): the benchmark's values for
--dataset and --method (or a --config=FILE[:ARG] file's), then any
--config.PATH=VALUE (`--print_config` lists every PATH with its value and
meaning, and writes nothing). Each run gets its own folder,
{workdir}/{dataset}/{name}/{config_hash}/seed{seed}/, holding config.json,
results.json (schema in emcl_jax/runner/results.py), metrics.jsonl and
metrics.csv (one record per task), TensorBoard events
(--config.output.tensorboard=true) and, while it runs, checkpoints/ (saved
after every task). The same command again resumes an unfinished run and
refuses a finished one unless --config.output.overwrite=true. Prints one
summary line per run. Progress goes to stderr: a bar on a terminal, a line
every 10 s otherwise. Bad input ends with one line on stderr and exit code
2; a diverging loss with exit code 1; no results file then.
"""

from absl import flags
from absl import logging
import numpy as np

from emcl_jax import runner
from emcl_jax.launch import cli
from emcl_jax.launch import distributed
from emcl_jax.launch import options
from emcl_jax.reporting import tables

FLAGS = flags.FLAGS


def main(argv):
  logging.set_verbosity(logging.ERROR)  # keep library chatter off stderr
  del argv  # the parser refused any argument left over
  with cli.failing(workdir=FLAGS.workdir):
    options.seeds()
    config = cli.run_config(FLAGS.dataset, FLAGS.method)
    if FLAGS.print_config:
      cli.print_config(config)
      return
    if config.seeds > 1 and config.output.overlap_eval:
      raise ValueError('--config.output.overlap_eval applies to one seed; '
                       'drop it or --seeds')
    (outcome,) = runner.sweep(
        [config], config.output.workdir, skip_finished=False,
        keep_going=False,
        together=FLAGS.parallel_seeds and config.seeds > 1,
        echo=print if config.output.verbose else None,
        on_results=_print_run)
  runs = outcome.results
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
  distributed.start(main, __doc__, 'run')


if __name__ == '__main__':
  entry()
