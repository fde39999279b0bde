"""The flags every launch script shares: the same names and meanings in
run, sweep, reproduce, bench and summarize.

Seeds: `--seed=S --seeds=N` is seeds S..S+N-1 everywhere. The other short
flags each set one path of the run config (`emcl_jax.configs.schema`);
unset, they leave the benchmark's value. Every setting, these included, can
also be given as `--config.PATH=VALUE`.
"""

from typing import Any

from absl import flags

FLAGS = flags.FLAGS

flags.DEFINE_integer('seed', 0, 'The first seed (data draws, init, replay).')
flags.DEFINE_integer('seeds', None, 'Number of seeds: seeds seed..seed+N-1 '
                     '(default: 1 in run.py and bench.py, 5 in sweep.py and '
                     'reproduce.py).')
flags.DEFINE_string('config', None, 'A Python file whose get_config() '
                    "returns settings, {'method.beta': 0.05, "
                    "'data.num_tasks': 5}, applied over the benchmark's; "
                    'flags and --config.PATH=VALUE win.')
flags.DEFINE_bool('print_config', False, 'Print every setting of the run '
                  '(value and meaning) and its config hash, then exit '
                  'without training.')
flags.DEFINE_bool('parallel_seeds', True, "Run a setting's seeds as one "
                  'vmapped program sharded over the devices (timed '
                  'together); false: one after another, each timed alone.')

# Short flag -> (config path, flag type, help). Each sets that path.
SHORT = {
    'num_tasks': ('data.num_tasks', 'integer', 'Tasks T (shrink the '
                  "benchmark; default: Table I's)."),
    'samples_per_task': ('data.samples_per_task', 'integer', 'Training '
                         "samples per task (default: Table I's)."),
    'data_dir': ('data.dir', 'string', 'Folder with the data files (MNIST '
                 'IDX, cifar-100-python, mini-imagenet-cache-*.pkl or one '
                 'folder per class); MNIST default: the bundled subset.'),
    'data_source': ('data.source', 'string', "auto (data_dir's files if "
                    'given; else the bundled MNIST subset, or the official '
                    'CIFAR-100 / TinyImageNet archive downloaded once into '
                    'data_dir, $EMCL_JAX_DATA or ~/.cache/emcl_jax) | dir | '
                    'download | tfds | bundled.'),
    'class_order': ('data.class_order', 'string', 'natural | random: the '
                    'order of the classes over the tasks (class-split '
                    'benchmarks; random is drawn from the seed).'),
    'model': ('model.name', 'string', "mlp | resnet18_reduced | pc_cnn "
              "(default: the benchmark's)."),
    'norm': ('model.norm', 'string', 'resnet18_reduced only: group '
             '(default) | instance | layer | batch (frozen statistics) | '
             'none.'),
    'batch_size': ('protocol.batch_size', 'integer', 'Incoming batch size '
                   '(default 10, the paper\'s).'),
    'epochs': ('protocol.epochs', 'integer', "Passes over each task's "
               'stream (default 1; the replay memory takes the first '
               'only).'),
    'eval': ('protocol.eval', 'string', 'task | class | both (class-split '
             'benchmarks; default task).'),
    'progress': ('output.progress', 'bool', 'Progress on stderr (default '
                 'true).'),
    'tensorboard': ('output.tensorboard', 'bool', 'Also write TensorBoard '
                    'events (default false).'),
    'checkpoint': ('output.checkpoint', 'bool', 'Save after every task so '
                   'that the same command resumes (default true).'),
}
_DEFINE = {'integer': flags.DEFINE_integer, 'string': flags.DEFINE_string,
           'bool': flags.DEFINE_bool}
for _name, (_path, _kind, _help) in SHORT.items():
  _DEFINE[_kind](_name, None, f'{_help} = --config.{_path}')


def seeds(default_count: int = 1) -> list[int]:
  """--seed..--seed+--seeds-1 (`--seeds` is each script's own flag, with
  its own default count).

  Raises:
    ValueError: a negative --seed or --seeds < 1.
  """
  count = FLAGS.seeds if FLAGS.seeds is not None else default_count
  if FLAGS.seed < 0:
    raise ValueError(f'--seed must be >= 0, got {FLAGS.seed}')
  if count < 1:
    raise ValueError(f'--seeds must be >= 1, got {count}')
  return list(range(FLAGS.seed, FLAGS.seed + count))


def overrides() -> dict[str, Any]:
  """{config path: value} of the short flags given."""
  return {path: FLAGS[name].value for name, (path, _, _) in SHORT.items()
          if FLAGS[name].value is not None}
