"""Benchmarks by name. `load(name, ...)` returns a `TaskSet`.

Permutation and rotation benchmarks (single head, inputs [784]):
'mnist_permutations', 'many_permutations', 'mnist_rotations'. Class-split
benchmarks (multi-head: `TaskSet.class_mask` names each task's classes,
labels are global class ids): 'split_mnist' (inputs [28, 28]), 'cifar100'
([32, 32, 3]), 'miniimagenet' ([84, 84, 3]), 'tinyimagenet' ([64, 64, 3]);
all inputs uint8, their shape is `tasks.train_x.shape[2:]`.
`from_arrays` builds a benchmark from your own arrays.
"""

from emcl_jax.data import cifar100
from emcl_jax.data.arrays import from_arrays
from emcl_jax.data import miniimagenet
from emcl_jax.data import mnist
from emcl_jax.data import permutations
from emcl_jax.data import rotations
from emcl_jax.data import splits
from emcl_jax.data import tinyimagenet
from emcl_jax.data.splits import CLASS_ORDERS
from emcl_jax.data.tasks import TaskSet
from emcl_jax.errors import DataError

# name -> (default num_tasks, default samples_per_task), Table I; None: all
# of a task's training images.
BENCHMARKS = {
    'mnist_permutations': (20, 1000),
    'many_permutations': (100, 200),
    'mnist_rotations': (20, 1000),
    'split_mnist': (5, None),
    'cifar100': (20, 2500),
    'miniimagenet': (20, 2500),
    # La-MAML's Split TinyImageNet: 40 tasks of 5 classes; 2,250 of each
    # task's 2,500 images (its 10% validation hold-out).
    'tinyimagenet': (40, 2250),
}

# Benchmarks of the bundled 5,000-image MNIST subset (read without a
# data_dir).
BUNDLED = ('mnist_permutations', 'many_permutations', 'mnist_rotations',
           'split_mnist')

# Benchmarks whose official archive `download.fetch` gets when no folder
# holds it (data_source 'download', or 'auto').
DOWNLOADS = ('cifar100', 'tinyimagenet')

# Class-split benchmarks: name -> (classes per task, number of classes).
CLASS_SPLITS = {
    'split_mnist': (2, 10),
    'cifar100': (5, 100),
    'miniimagenet': (5, 100),
    'tinyimagenet': (5, 200),
}


def load(name: str, *, num_tasks: int | None = None,
         samples_per_task: int | None = None, seed: int = 0,
         data_source: str = 'auto', data_dir: str | None = None,
         class_order: str = 'natural') -> TaskSet:
  """Loads benchmark `name`, optionally shrunk.

  Args:
    name: a key of BENCHMARKS.
    num_tasks: T (default: BENCHMARKS); at most 5 for split_mnist and 20 for
      cifar100 and miniimagenet.
    samples_per_task: training stream length per task (default: BENCHMARKS).
    seed: fixes permutations, draws, shuffles and a random class order.
    data_source: 'auto', 'dir', 'tfds' or 'bundled' (MNIST benchmarks);
      'auto', 'dir' or 'tfds' (cifar100); 'auto' or 'dir' (miniimagenet).
    data_dir: the folder of the 'dir' source.
    class_order: 'natural' (task k gets classes k*c..k*c+c-1) or 'random'
      (a seeded permutation of the classes); class-split benchmarks only.

  Raises:
    DataError: unknown benchmark or class order, bad sizes, or data the
      source cannot give.
  """
  if name not in BENCHMARKS:
    raise DataError(f'unknown dataset {name!r}; use one of '
                    f'{", ".join(BENCHMARKS)}')
  if class_order not in CLASS_ORDERS:
    raise DataError(f'unknown class order {class_order!r}; use '
                    "class_order='natural' or class_order='random'")
  default_tasks, default_samples = BENCHMARKS[name]
  num_tasks = default_tasks if num_tasks is None else num_tasks
  samples_per_task = (default_samples if samples_per_task is None
                      else samples_per_task)
  if name not in CLASS_SPLITS:
    split = mnist.load(data_source, data_dir)
    build = (rotations.rotated_tasks if name == 'mnist_rotations'
             else permutations.permuted_tasks)
    return build(split, num_tasks, samples_per_task, seed)
  per_task, num_classes = CLASS_SPLITS[name]
  if not 1 <= num_tasks <= num_classes // per_task:
    raise DataError(f'num_tasks={num_tasks} is outside 1..'
                    f'{num_classes // per_task} for {name}; change '
                    'num_tasks')
  if name == 'split_mnist':
    split = mnist.load(data_source, data_dir)
  elif name == 'cifar100':
    split = cifar100.load(data_source, data_dir)
  elif name == 'tinyimagenet':
    split = tinyimagenet.load(data_source, data_dir)
  else:
    split = miniimagenet.load(data_source, data_dir)
  return splits.class_split(
      split.train_x, split.train_y, split.test_x, split.test_y,
      num_tasks=num_tasks, classes_per_task=per_task, seed=seed,
      class_order=class_order, samples_per_task=samples_per_task,
      source=split.source, num_classes=num_classes)


__all__ = ['BENCHMARKS', 'BUNDLED', 'DOWNLOADS', 'CLASS_ORDERS', 'CLASS_SPLITS', 'DataError',
           'TaskSet', 'from_arrays', 'load']
