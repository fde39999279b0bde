r"""Runs one continual-learning experiment and writes its results JSON.

  python experiments/run.py                      # EMCL, MNIST Permutations,
                                                 # bundled offline data
  python experiments/run.py --dataset=many_permutations --method=finetune
  python experiments/run.py --data_dir=/path/to/mnist --seed=3
  python experiments/run.py --seeds=5            # seeds 0-4, one program

Prints one summary line; writes {output_dir}/{dataset}_{method}_seed{seed}.json
(schema in emcl_jax/experiment.py) and the per-task metrics as JSON lines
under {output_dir}/logs/ (TensorBoard events under {output_dir}/tensorboard/
with --tensorboard). Progress goes to stderr: a bar on a terminal, a line
every 10 s otherwise. Bad input ends with one line on stderr
and exit code 2; a diverging loss with exit code 1; no results file then.
"""

import sys

from absl import app
from absl import flags
from absl import logging
import numpy as np

from emcl_jax import experiment
from emcl_jax.errors import DataError, NonFiniteLossError

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    'mnist_permutations | many_permutations | split_mnist | '
                    'cifar100 | miniimagenet')
flags.DEFINE_string('model', None, 'mlp | resnet18_reduced; default: the '
                    "benchmark's (emcl_jax/configs/).")
flags.DEFINE_string('norm', None, 'resnet18_reduced only: group (default: '
                    'GroupNorm, 4 groups) | instance | layer | batch (frozen '
                    'statistics) | none.')
flags.DEFINE_string('class_order', 'natural', 'natural | random: the order '
                    'of the classes over the tasks (class-split benchmarks; '
                    'random is drawn from the seed).')
flags.DEFINE_string('method', 'emcl', ' | '.join(experiment.METHODS))
flags.DEFINE_integer('seed', 0, 'Random seed (data draws, init, replay).')
flags.DEFINE_integer('seeds', None, 'Run seeds seed..seed+N-1 as one '
                     'vmapped program (sharded over the devices) and print '
                     'their mean +- std; one results file per seed.')
flags.DEFINE_string('data_dir', None, 'Folder with the data files (MNIST '
                    'IDX, cifar-100-python, mini-imagenet-cache-*.pkl or one '
                    'folder per class); default for MNIST: the bundled '
                    '5,000-image subset.')
flags.DEFINE_string('data_source', 'auto', 'auto (data_dir if given, else '
                    'bundled) | dir | tfds | bundled')
flags.DEFINE_string('output_dir', 'results', 'Where the results JSON goes.')
flags.DEFINE_integer('num_tasks', None, 'Shrink the benchmark: tasks.')
flags.DEFINE_integer('samples_per_task', None, 'Shrink: samples per task.')
flags.DEFINE_integer('batch_size', 10, 'Incoming batch size (paper: 10).')
flags.DEFINE_bool('verbose', False, 'Print a line after every task.')
flags.DEFINE_bool('progress', True, 'Progress on stderr (a bar on a '
                  'terminal, periodic lines otherwise).')
flags.DEFINE_bool('tensorboard', False, 'Also write TensorBoard event files '
                  'under {output_dir}/tensorboard/.')
flags.DEFINE_bool('overlap_eval', False, 'Evaluate task t on a second '
                  'thread while task t+1 trains (same results, less wall '
                  'time; training seconds then share the cores).')
flags.DEFINE_string('config', None, 'A Python file whose get_config() '
                    "overrides the benchmark's (emcl_jax/configs/), e.g. "
                    "{'methods': {'emcl': {'beta': 0.05}}}; flags win.")
flags.DEFINE_string('checkpoint_dir', None, 'Save the run after every task '
                    'here (orbax); see --resume.')
flags.DEFINE_bool('resume', False, 'Continue the run saved in '
                  '--checkpoint_dir (the same flags otherwise).')
flags.DEFINE_string('name', None, 'Label of the run in the results file name '
                    '(default: the method), e.g. for ablations.')
# One flag per hyper-parameter of any method (config fields, collected by
# experiment.hyperparameters); None keeps Table II's / the config's default.
_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
           float: flags.DEFINE_float, str: flags.DEFINE_string}
HYPERPARAMETERS = experiment.hyperparameters()
for _name, _hp in HYPERPARAMETERS.items():
  _DEFINE[_hp.type](_name, None, f'[{", ".join(_hp.methods)}] {_hp.help}')


def main(argv):
  logging.set_verbosity(logging.ERROR)  # keep library chatter off stderr
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; flags take the form --name=value')
  overrides = {name: FLAGS[name].value for name in HYPERPARAMETERS
               if FLAGS[name].value is not None}
  kwargs = dict(overrides=overrides, num_tasks=FLAGS.num_tasks,
                samples_per_task=FLAGS.samples_per_task,
                batch_size=FLAGS.batch_size, data_source=FLAGS.data_source,
                data_dir=FLAGS.data_dir,
                name=FLAGS.name,
                checkpoint_dir=FLAGS.checkpoint_dir, resume=FLAGS.resume,
                config_file=FLAGS.config, model=FLAGS.model,
                class_order=FLAGS.class_order, norm=FLAGS.norm)
  try:
    if FLAGS.seeds is not None and FLAGS.seeds < 1:
      raise ValueError(f'--seeds must be >= 1, got {FLAGS.seeds}')
    if FLAGS.seeds is not None and FLAGS.overlap_eval:
      raise ValueError('--overlap_eval applies to one seed; drop it or '
                       '--seeds')
    seeds = tuple(range(FLAGS.seed, FLAGS.seed + (FLAGS.seeds or 1)))
    with experiment.run_log(
        FLAGS.output_dir, FLAGS.dataset, FLAGS.name or FLAGS.method, seeds,
        tensorboard=FLAGS.tensorboard, resume=FLAGS.resume,
        echo=print if FLAGS.verbose else None,
        progress=FLAGS.progress) as log:
      logging_fns = dict(log_fn=log,
                         batch_fn=log.batch if FLAGS.progress else None)
      if FLAGS.seeds is not None:
        runs = experiment.run_seeds(FLAGS.dataset, FLAGS.method, seeds,
                                    **logging_fns, **kwargs)
      else:
        runs = [experiment.run(FLAGS.dataset, FLAGS.method, FLAGS.seed,
                               overlap_eval=FLAGS.overlap_eval,
                               **logging_fns, **kwargs)]
  except (ValueError, DataError) as e:
    _fail(str(e))
  except NonFiniteLossError as e:
    _fail(str(e), code=1)
  for results in runs:
    path = experiment.write_results(results, FLAGS.output_dir)
    print(f"{results['dataset']} {results['name']} seed={results['seed']} "
          f"ACC={results['acc']:.2f} BWT={results['bwt']:.2f} "
          f"LA={results['la']:.2f} train_s={results['train_seconds']:.2f} "
          f"-> {path}")
  if len(runs) > 1:
    acc = np.array([r['acc'] for r in runs])
    bwt = np.array([r['bwt'] for r in runs])
    print(f"{len(runs)} seeds: ACC={acc.mean():.2f}+-{acc.std():.2f} "
          f"BWT={bwt.mean():.2f}+-{bwt.std():.2f} "
          f"train_s={runs[0]['train_seconds']:.2f} (all seeds together)")


def _fail(message: str, code: int = 2):
  sys.stderr.write(f'error: {message}\n')
  sys.exit(code)


if __name__ == '__main__':
  app.run(main)
