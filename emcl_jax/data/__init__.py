"""Benchmarks by name. `load(name, ...)` returns a `TaskSet`.

Permutation and rotation benchmarks (single head, inputs [784]):
'mnist_permutations', 'many_permutations', 'mnist_rotations'. Class-split
benchmarks (multi-head: `TaskSet.class_mask` names each task's classes,
labels are global class ids): 'split_mnist' (inputs [28, 28]), 'cifar100'
([32, 32, 3]), 'miniimagenet' ([84, 84, 3]), 'tinyimagenet' ([64, 64, 3]);
all inputs uint8, their shape is `tasks.train_x.shape[2:]`.
`RECORDS[name]` is everything known about a name (`Benchmark`);
`from_arrays` builds a benchmark from your own arrays.
"""

from typing import Any, Callable, NamedTuple

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


class Benchmark(NamedTuple):
  """Everything the library knows about one benchmark name (Table I); the
  loader, configs, the data-source checks and the figures read these."""
  label: str                     # the display name, as the paper writes it
  num_tasks: int                 # default T
  samples_per_task: int | None   # default; None: all of a task's images
  read: Callable[..., Any]       # read(data_source, data_dir) -> Split
  # Permutation and rotation benchmarks: build(split, T, n, seed) -> TaskSet.
  build: Callable[..., TaskSet] | None = None
  # Class-split benchmarks (multi-head): classes per task, and in all.
  classes_per_task: int | None = None
  num_classes: int | None = None
  # 'bundled': the bundled MNIST subset is read without a data_dir;
  # 'download': `download.fetch` gets the official archive when no folder
  # holds it (data_source 'download', or 'auto').
  source: str = ''


RECORDS = {
    'mnist_permutations': Benchmark('MNIST Permutations', 20, 1000,
                                    mnist.load, permutations.permuted_tasks,
                                    source='bundled'),
    'many_permutations': Benchmark('Many Permutations', 100, 200, mnist.load,
                                   permutations.permuted_tasks,
                                   source='bundled'),
    'mnist_rotations': Benchmark('MNIST Rotations', 20, 1000, mnist.load,
                                 rotations.rotated_tasks, source='bundled'),
    'split_mnist': Benchmark('Split MNIST', 5, None, mnist.load,
                             classes_per_task=2, num_classes=10,
                             source='bundled'),
    'cifar100': Benchmark('Split CIFAR100', 20, 2500, cifar100.load,
                          classes_per_task=5, num_classes=100,
                          source='download'),
    'miniimagenet': Benchmark('Split miniImageNet', 20, 2500,
                              miniimagenet.load, classes_per_task=5,
                              num_classes=100),
    # La-MAML's Split TinyImageNet: 40 tasks of 5 classes; 2,250 of each
    # task's 2,500 images (its 10% validation hold-out).
    'tinyimagenet': Benchmark('Split TinyImageNet', 40, 2250,
                              tinyimagenet.load, classes_per_task=5,
                              num_classes=200, source='download'),
}

# Views of RECORDS. name -> (default num_tasks, default samples_per_task).
BENCHMARKS = {n: (b.num_tasks, b.samples_per_task) for n, b in RECORDS.items()}
BUNDLED = tuple(n for n, b in RECORDS.items() if b.source == 'bundled')
DOWNLOADS = tuple(n for n, b in RECORDS.items() if b.source == 'download')
# Class-split benchmarks: name -> (classes per task, number of classes).
CLASS_SPLITS = {n: (b.classes_per_task, b.num_classes)
                for n, b in RECORDS.items() if b.classes_per_task}


def label(name: str) -> str:
  """The display name of a benchmark name (the name itself if unknown)."""
  record = RECORDS.get(name)
  return record.label if record else name


def load(name: str, *, num_tasks: int | None = None,
         samples_per_task: int | None = None, seed: int = 0,
         data_source: str = 'auto', data_dir: str | None = None,
         class_order: str = 'natural') -> TaskSet:
  """Loads benchmark `name`, optionally shrunk.

  Args:
    name: a key of RECORDS.
    num_tasks: T (default: RECORDS); at most 5 for split_mnist and 20 for
      cifar100 and miniimagenet.
    samples_per_task: training stream length per task (default: RECORDS).
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
  bench = RECORDS[name]
  num_tasks = bench.num_tasks if num_tasks is None else num_tasks
  samples_per_task = (bench.samples_per_task if samples_per_task is None
                      else samples_per_task)
  if bench.build is not None:
    return bench.build(bench.read(data_source, data_dir), num_tasks,
                       samples_per_task, seed)
  per_task, num_classes = bench.classes_per_task, bench.num_classes
  if not 1 <= num_tasks <= num_classes // per_task:
    raise DataError(f'num_tasks={num_tasks} is outside 1..'
                    f'{num_classes // per_task} for {name}; change '
                    'num_tasks')
  split = bench.read(data_source, data_dir)
  return splits.class_split(
      split.train_x, split.train_y, split.test_x, split.test_y,
      num_tasks=num_tasks, classes_per_task=per_task, seed=seed,
      class_order=class_order, samples_per_task=samples_per_task,
      source=split.source, num_classes=num_classes)


__all__ = ['BENCHMARKS', 'BUNDLED', 'Benchmark', 'CLASS_ORDERS',
           'CLASS_SPLITS', 'DOWNLOADS', 'DataError', 'RECORDS', 'TaskSet',
           'from_arrays', 'label', 'load']
