"""TensorFlow Datasets as a data source (downloads on first use, which needs
network access): the shared reader of the MNIST and CIFAR-100 benchmarks."""

import socket
from typing import Callable

import numpy as np

from emcl_jax.errors import DataError, first_line


def check_network(host: str = 'storage.googleapis.com') -> None:
  """Fails fast (5 s) instead of through TFDS's minutes of retries."""
  try:
    socket.create_connection((host, 443), timeout=5).close()
  except OSError as e:
    raise OSError(f'cannot reach {host}: {e}') from None


def read(name: str, data_dir: str | None, fix: str,
         image: Callable[[np.ndarray], np.ndarray] = lambda a: a
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """TFDS dataset `name`'s train and test splits: images (each passed
  through `image`, stacked as uint8) and int32 labels.

  Args:
    name: the TFDS name ('mnist', 'cifar100').
    data_dir: TFDS's data folder (None: its default).
    fix: the end of the error messages, what to do instead.
    image: maps one TFDS image to the benchmark's layout.

  Returns:
    (train_x, train_y, test_x, test_y).

  Raises:
    DataError: TFDS is not installed or cannot provide the data.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise DataError('tensorflow-datasets is not installed; pip install '
                    f'tensorflow-datasets, or {fix}') from None
  try:
    tfds.disable_progress_bar()
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
      check_network()
      builder.download_and_prepare(file_format='array_record')
    out = []
    for split in ('train', 'test'):
      source = builder.as_data_source(split=split)
      items = [source[i] for i in range(len(source))]
      out.append(np.stack([image(it['image']) for it in items]
                          ).astype(np.uint8))
      out.append(np.array([it['label'] for it in items], np.int32))
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'TFDS could not provide {name} ({first_line(e)[:200]}); '
                    f'it needs network access on first use, or {fix}'
                    ) from None
  return tuple(out)
