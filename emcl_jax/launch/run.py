r"""Runs one continual-learning experiment and writes its results JSON.

  python experiments/run.py                      # EMCL, MNIST Permutations,
                                                 # bundled offline data
  python experiments/run.py --dataset=many_permutations --method=finetune
  python experiments/run.py --data_dir=/path/to/mnist --seed=3
  python experiments/run.py --seeds=5            # seeds 0-4, one program

Each run gets its own folder,
{workdir}/{dataset}/{name}/{config_hash}/seed{seed}/, holding config.json,
results.json (schema in emcl_jax/experiment.py), metrics.jsonl and
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

from emcl_jax.launch import cli
from emcl_jax import experiment
from emcl_jax.errors import DataError, NonFiniteLossError
from emcl_jax.reporting import tables

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    'mnist_permutations | many_permutations | mnist_rotations | '
                    'split_mnist | '
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
flags.DEFINE_string('workdir', 'runs', 'Root of the run folders '
                    '({workdir}/{dataset}/{name}/{config_hash}/seed{seed}/).')
flags.DEFINE_alias('output_dir', 'workdir')
flags.DEFINE_bool('overwrite', False, 'Run a finished run again (its folder '
                  'is started over).')
flags.DEFINE_bool('checkpoint', True, 'Save after every task, so that the '
                  'same command resumes a stopped run.')
flags.DEFINE_integer('num_tasks', None, 'Shrink the benchmark: tasks.')
flags.DEFINE_integer('samples_per_task', None, 'Shrink: samples per task.')
flags.DEFINE_integer('batch_size', 10, 'Incoming batch size (paper: 10).')
flags.DEFINE_integer('epochs', 1, 'Passes over each task\'s stream (a new '
                     'shuffle per epoch; the replay memory takes the first '
                     'only).')
flags.DEFINE_enum('eval', 'task', ['task', 'class', 'both'], 'Class-split '
                  'benchmarks: task-incremental (each task over its own '
                  'classes), class-incremental (over every class seen so '
                  'far), or both (the class-incremental numbers under '
                  '*_class keys).')
flags.DEFINE_bool('verbose', False, 'Print a line after every task.')
flags.DEFINE_bool('progress', True, 'Progress on stderr (a bar on a '
                  'terminal, periodic lines otherwise).')
flags.DEFINE_bool('tensorboard', False, 'Also write TensorBoard event files '
                  "(scalars, hparams, the accuracy matrix) in each run's "
                  'folder.')
flags.DEFINE_bool('overlap_eval', False, 'Evaluate task t on a second '
                  'thread while task t+1 trains (same results, less wall '
                  'time; training seconds then share the cores).')
flags.DEFINE_string('config', None, 'A Python file whose get_config() '
                    "overrides the benchmark's (emcl_jax/configs/), e.g. "
                    "{'methods': {'emcl': {'beta': 0.05}}}; flags win.")
flags.DEFINE_string('name', None, 'Label of the run, its folder under the '
                    'dataset (default: the method), e.g. for ablations.')
# One flag per hyper-parameter of any method (config fields, collected by
# experiment.hyperparameters); None keeps Table II's / the config's default.
_DEFINE = {bool: flags.DEFINE_bool, int: flags.DEFINE_integer,
           float: flags.DEFINE_float, str: flags.DEFINE_string}
HYPERPARAMETERS = experiment.hyperparameters()
for _name, _hp in HYPERPARAMETERS.items():
  _DEFINE[_hp.type](_name, None, f'[{", ".join(_hp.methods)}] {_hp.help}')


def main(argv):
  logging.set_verbosity(logging.ERROR)  # keep library chatter off stderr
  del argv  # cli.parse_flags refused any argument left over
  overrides = {name: FLAGS[name].value for name in HYPERPARAMETERS
               if FLAGS[name].value is not None}
  spec = dict(overrides=overrides, num_tasks=FLAGS.num_tasks,
              samples_per_task=FLAGS.samples_per_task,
              batch_size=FLAGS.batch_size, data_source=FLAGS.data_source,
              data_dir=FLAGS.data_dir, config_file=FLAGS.config,
              model=FLAGS.model, class_order=FLAGS.class_order,
              norm=FLAGS.norm, eval_mode=FLAGS.eval, epochs=FLAGS.epochs)
  try:
    if FLAGS.seed < 0:
      raise ValueError(f'--seed must be >= 0, got {FLAGS.seed}')
    if FLAGS.seeds is not None and FLAGS.seeds < 1:
      raise ValueError(f'--seeds must be >= 1, got {FLAGS.seeds}')
    if FLAGS.seeds is not None and FLAGS.overlap_eval:
      raise ValueError('--overlap_eval applies to one seed; drop it or '
                       '--seeds')
    seeds = tuple(range(FLAGS.seed, FLAGS.seed + (FLAGS.seeds or 1)))
    runs = experiment.run_in_workdir(
        FLAGS.workdir, FLAGS.dataset, FLAGS.method, seeds, name=FLAGS.name,
        overwrite=FLAGS.overwrite, together=FLAGS.seeds is not None,
        checkpoint=FLAGS.checkpoint, tensorboard=FLAGS.tensorboard,
        progress=FLAGS.progress, echo=print if FLAGS.verbose else None,
        overlap_eval=FLAGS.overlap_eval, on_results=_print_run, **spec)
  except (ValueError, DataError) as e:
    cli.fail(str(e))
  except NonFiniteLossError as e:
    cli.fail(str(e), code=1)
  except OSError as e:
    cli.fail(f'cannot write under --workdir={FLAGS.workdir}: '
             f'{e.strerror or e}; choose a writable --workdir')
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
  cli.start(main, __doc__)


if __name__ == '__main__':
  entry()
