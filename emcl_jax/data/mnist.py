"""MNIST (or Fashion-MNIST) from one of three sources, in this precedence:

1. 'dir': `data_dir` holding the four standard IDX files
   (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz],
   t10k-images-idx3-ubyte[.gz], t10k-labels-idx1-ubyte[.gz]).
2. 'tfds': TensorFlow Datasets `mnist` (downloaded and prepared on first use,
   which needs network access and TensorFlow: pip install 'emcl_jax[tfds]').
3. 'bundled': the real 5,000-image MNIST subset shipped in this package
   (4,000 train / 1,000 test, 400 / 100 per class), the offline default.
"""

import os
from typing import NamedTuple

import numpy as np

from emcl_jax.data import idx
from emcl_jax.data import tfds_source
from emcl_jax.errors import DataError

BUNDLED_DIR = os.path.join(os.path.dirname(__file__), 'mnist_5k')
SOURCES = ('auto', 'dir', 'tfds', 'bundled')
FILES = {
    'train_x': ('train-images-idx3-ubyte', idx.IMAGES_MAGIC),
    'train_y': ('train-labels-idx1-ubyte', idx.LABELS_MAGIC),
    'test_x': ('t10k-images-idx3-ubyte', idx.IMAGES_MAGIC),
    'test_y': ('t10k-labels-idx1-ubyte', idx.LABELS_MAGIC),
}


class Split(NamedTuple):
  """Images [N, 28, 28] uint8 and labels [N] int32 of train and test, and a
  description of where they came from."""
  train_x: np.ndarray
  train_y: np.ndarray
  test_x: np.ndarray
  test_y: np.ndarray
  source: str


def read_dir(data_dir: str) -> Split:
  """Reads the four IDX files from `data_dir`.

  Raises:
    DataError: a file is missing, corrupt, or images and labels disagree.
  """
  if not os.path.isdir(data_dir):
    raise DataError(f'data_dir={data_dir!r} is not a directory; point it '
                    'at the folder holding the four MNIST IDX files')
  arrays = {}
  for key, (stem, magic) in FILES.items():
    path = idx.find_file(data_dir, stem)
    if path is None:
      raise DataError(f'{stem}[.gz] not found in {data_dir}; put the four '
                      'MNIST IDX files (train-images-idx3-ubyte, '
                      'train-labels-idx1-ubyte, t10k-images-idx3-ubyte, '
                      't10k-labels-idx1-ubyte, .gz or not) there')
    arrays[key] = idx.read_idx(path, magic)
  for split in ('train', 'test'):
    x, y = arrays[f'{split}_x'], arrays[f'{split}_y']
    if x.ndim != 3 or y.ndim != 1 or x.shape[0] != y.shape[0]:
      raise DataError(f'{split} images {x.shape} and labels {y.shape} in '
                      f'{data_dir} do not match; re-download the files')
    if y.size and y.max() > 9:
      raise DataError(f'{split} labels in {data_dir} exceed 9; not MNIST')
  return Split(arrays['train_x'], arrays['train_y'].astype(np.int32),
               arrays['test_x'], arrays['test_y'].astype(np.int32),
               f'dir:{os.path.abspath(data_dir)}')


def read_tfds(name: str = 'mnist', data_dir: str | None = None) -> Split:
  """Loads `name` through TensorFlow Datasets (prepared under `data_dir` on
  first use, which needs network access and TensorFlow).

  Raises:
    DataError: TFDS is not installed, TensorFlow is missing for the first
      use, or the download or preparation fails.
  """
  arrays = tfds_source.read(name, data_dir,
                            'use data_dir with the IDX files',
                            image=lambda a: a[..., 0])
  return Split(*arrays, f'tfds:{name}')


def load(source: str = 'auto', data_dir: str | None = None) -> Split:
  """MNIST from the requested source ('auto': data_dir if given, else bundled).

  Raises:
    DataError: an unknown source, or the source cannot provide the data.
  """
  if source not in SOURCES:
    raise DataError(f'unknown data source {source!r}; use one of {SOURCES}')
  if source == 'auto':
    source = 'dir' if data_dir else 'bundled'
  if source == 'dir':
    if not data_dir:
      raise DataError("data_source='dir' needs data_dir, the folder with "
                      'the IDX files')
    return read_dir(data_dir)
  if source == 'tfds':
    return read_tfds('mnist', data_dir)
  split = read_dir(BUNDLED_DIR)
  return split._replace(source='bundled:mnist-5k')
