r"""Runs one continual-learning experiment and writes its results JSON.

  python experiments/run.py                      # EMCL, MNIST Permutations,
                                                 # bundled offline data
  python experiments/run.py --dataset=many_permutations --method=finetune
  python experiments/run.py --data_dir=/path/to/mnist --seed=3

Prints one summary line; writes {output_dir}/{dataset}_{method}_seed{seed}.json
(schema in emcl_jax/experiment.py). Bad input ends with one line on stderr
and exit code 2; a diverging loss with exit code 1; no results file then.
"""

import sys

from absl import app
from absl import flags
from absl import logging

from emcl_jax import experiment
from emcl_jax.errors import DataError, NonFiniteLossError

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    'mnist_permutations | many_permutations')
flags.DEFINE_string('method', 'emcl', 'emcl | finetune')
flags.DEFINE_integer('seed', 0, 'Random seed (data draws, init, replay).')
flags.DEFINE_string('data_dir', None, 'Folder with the MNIST IDX files; '
                    'default: the bundled 5,000-image subset.')
flags.DEFINE_string('data_source', 'auto', 'auto (data_dir if given, else '
                    'bundled) | dir | tfds | bundled')
flags.DEFINE_string('output_dir', 'results', 'Where the results JSON goes.')
flags.DEFINE_integer('num_tasks', None, 'Shrink the benchmark: tasks.')
flags.DEFINE_integer('samples_per_task', None, 'Shrink: samples per task.')
flags.DEFINE_integer('batch_size', 10, 'Incoming batch size (paper: 10).')
flags.DEFINE_bool('verbose', False, 'Print a line after every task.')
# Method hyper-parameters; None = Table II / EMCLConfig default.
flags.DEFINE_float('alpha0', None, 'EMCL: initial meta LR (Table II).')
flags.DEFINE_float('beta', None, 'EMCL: inner LR (Table II).')
flags.DEFINE_float('lam', None, 'EMCL: regularisation lambda (Table II).')
flags.DEFINE_float('gamma', None, 'EMCL: proximal step (Table II).')
flags.DEFINE_float('eta', None, 'EMCL: importance EMA decay (Eq 7).')
flags.DEFINE_float('r', None, 'EMCL: meta-LR scale factor (Eq 8).')
flags.DEFINE_string('meta_lr', None, 'EMCL: Eq 8 reading: inverse | literal '
                    '| constant.')
flags.DEFINE_string('importance_grad', None, 'EMCL: gradient for Eq 13: '
                    'first_inner | batch | meta.')
flags.DEFINE_string('h_norm', None, 'EMCL: importance scaling: mean | max | '
                    'none.')
flags.DEFINE_float('h_init', None, 'EMCL: initial importance (0 or 1).')
flags.DEFINE_float('h_min', None, 'EMCL: floor on the scaled importance.')
flags.DEFINE_string('inner', None, 'EMCL: inner rule: pgd | gd.')
flags.DEFINE_float('lr', None, 'finetune: SGD learning rate.')
flags.DEFINE_integer('memory_size', None, 'Replay memory slots (0: off).')
flags.DEFINE_integer('replay_size', None, 'Replay samples per batch.')
flags.DEFINE_integer('glances', None, 'Updates per incoming batch.')

HPARAM_FLAGS = ('alpha0', 'beta', 'lam', 'gamma', 'eta', 'r', 'meta_lr',
                'importance_grad', 'h_norm', 'h_init', 'h_min', 'inner', 'lr',
                'memory_size', 'replay_size', 'glances')


def main(argv):
  logging.set_verbosity(logging.ERROR)  # keep library chatter off stderr
  if len(argv) > 1:
    _fail(f'unexpected arguments {argv[1:]}; flags take the form --name=value')
  overrides = {name: FLAGS[name].value for name in HPARAM_FLAGS
               if FLAGS[name].value is not None}
  try:
    results = experiment.run(
        FLAGS.dataset, FLAGS.method, FLAGS.seed, overrides=overrides,
        num_tasks=FLAGS.num_tasks, samples_per_task=FLAGS.samples_per_task,
        batch_size=FLAGS.batch_size, data_source=FLAGS.data_source,
        data_dir=FLAGS.data_dir, log_fn=print if FLAGS.verbose else None)
  except (ValueError, DataError) as e:
    _fail(str(e))
  except NonFiniteLossError as e:
    _fail(str(e), code=1)
  path = experiment.write_results(results, FLAGS.output_dir)
  print(f"{results['dataset']} {results['method']} seed={results['seed']} "
        f"ACC={results['acc']:.2f} BWT={results['bwt']:.2f} "
        f"LA={results['la']:.2f} train_s={results['train_seconds']:.2f} "
        f"-> {path}")


def _fail(message: str, code: int = 2):
  sys.stderr.write(f'error: {message}\n')
  sys.exit(code)


if __name__ == '__main__':
  app.run(main)
