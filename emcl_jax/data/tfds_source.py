"""TensorFlow Datasets as a data source: the shared reader of the MNIST and
CIFAR-100 benchmarks.

TFDS *prepares* a dataset once (downloads it, extracts it, encodes every
image as PNG) through TensorFlow, which this package does not install:
`pip install 'emcl_jax[tfds]'` adds tensorflow-cpu. Reading data already
prepared (array_record files under the TFDS data dir) needs no TensorFlow
and no network. So: prepared data is read; otherwise TensorFlow is checked
before anything is downloaded, then the network, then TFDS prepares it.
"""

import socket
from typing import Callable

import numpy as np

from emcl_jax.errors import DataError, first_line

# The host each dataset downloads from (what check_network probes).
HOSTS = {'mnist': 'storage.googleapis.com', 'cifar100': 'www.cs.toronto.edu'}
INSTALL = "pip install 'emcl_jax[tfds]' (tensorflow-cpu)"
# How much of an error's further lines and causes a message quotes after the
# error's own first line, which is always quoted whole.
MORE = 300


def reason(e: BaseException, more: int = MORE) -> str:
  """Why `e` happened, on one line: its message's first line, whole, then
  its further lines and the first lines of its causes, cut to `more`
  characters."""
  text = first_line(e)
  rest = [line.strip() for line in str(e).strip().splitlines()[1:]
          if line.strip()]
  cause, seen = e.__cause__ or e.__context__, {id(e)}
  while cause is not None and id(cause) not in seen:
    seen.add(id(cause))
    line = first_line(cause)
    if line not in text and all(line not in r for r in rest):
      rest.append(line)
    cause = cause.__cause__ or cause.__context__
  extra = ' | '.join(rest)
  if len(extra) > more:
    extra = extra[:more - 3] + '...'
  return f'{text} | {extra}' if extra else text


def check_network(host: str = 'storage.googleapis.com') -> None:
  """Fails fast (5 s) instead of through TFDS's minutes of retries."""
  try:
    socket.create_connection((host, 443), timeout=5).close()
  except OSError as e:
    raise OSError(f'cannot reach {host}: {e}') from None


def check_tensorflow(name: str, fix: str) -> None:
  """Raises the one-line DataError saying how to install TensorFlow when it
  cannot be imported (TFDS prepares data through it); hides the GPUs from
  it, which JAX uses."""
  try:
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'TFDS needs TensorFlow to prepare {name} ({reason(e)})'
                    f': {INSTALL}, or {fix}') from None
  try:
    tf.config.set_visible_devices([], 'GPU')
  except Exception:  # pylint: disable=broad-except
    pass  # no such API, or TensorFlow already started its devices


def read(name: str, data_dir: str | None, fix: str,
         image: Callable[[np.ndarray], np.ndarray] = lambda a: a
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
  """TFDS dataset `name`'s train and test splits: images (each passed
  through `image`, stacked as uint8) and int32 labels. Prepares the dataset
  under `data_dir` first when it is not prepared there (TensorFlow and
  network needed once).

  Args:
    name: the TFDS name ('mnist', 'cifar100').
    data_dir: TFDS's data folder (None: its default).
    fix: the end of the error messages, what to do instead.
    image: maps one TFDS image to the benchmark's layout.

  Returns:
    (train_x, train_y, test_x, test_y).

  Raises:
    DataError: TFDS is not installed, TensorFlow is missing for the first
      use, the network is unreachable, or TFDS cannot provide the data.
  """
  try:
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise DataError('tensorflow-datasets is not installed; pip install '
                    f'tensorflow-datasets, or {fix}') from None
  try:
    tfds.disable_progress_bar()
    builder = tfds.builder(name, data_dir=data_dir)
    prepared = builder.is_prepared()
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'TFDS cannot open {name} ({reason(e)}); {fix}'
                    ) from None
  if not prepared:
    check_tensorflow(name, fix)  # before anything is downloaded
    host = HOSTS.get(name, 'storage.googleapis.com')
    try:
      check_network(host)
    except OSError as e:
      raise DataError(f'TFDS could not download {name}: {e}; it needs '
                      f'network access on first use, or {fix}') from None
    try:
      builder.download_and_prepare(file_format='array_record')
    except Exception as e:  # pylint: disable=broad-except
      raise DataError(f'TFDS could not download and prepare {name} in '
                      f'{builder.data_dir} ({reason(e)}); {fix}') from None
  try:
    out = []
    for split in ('train', 'test'):
      source = builder.as_data_source(split=split)
      items = [source[i] for i in range(len(source))]
      out.append(np.stack([image(it['image']) for it in items]
                          ).astype(np.uint8))
      out.append(np.array([it['label'] for it in items], np.int32))
  except Exception as e:  # pylint: disable=broad-except
    raise DataError(f'TFDS could not read the prepared {name} in '
                    f'{builder.data_dir} ({reason(e)}); delete that folder '
                    f'to prepare it again, or {fix}') from None
  return tuple(out)
