"""CIFAR-100 (fine labels) from one of two sources:

1. 'dir': `data_dir` holding the standard `cifar-100-python` folder (its
   pickles `train` and `test`; `meta` is not needed), or that folder itself,
   or `cifar-100-python.tar.gz`, read straight from the archive.
2. 'download': the official cifar-100-python.tar.gz, fetched, checked and
   extracted once into a cache folder (`download.fetch`), then read as 1.
   'auto' is 1 when `data_dir` holds the files, else 2.
3. 'tfds': TensorFlow Datasets `cifar100` (downloads on first use; needs
   network, and TensorFlow to prepare it).

There is no bundled copy. Each pickle is a dict with b'data' [N, 3072] uint8
(each row a 3x32x32 image, channel-major) and b'fine_labels' [N] in 0..99;
the full set is 50,000 train / 10,000 test images, 500 / 100 per class.
"""

import os
import tarfile
import zlib

import numpy as np

from emcl_jax.data import download
from emcl_jax.data import mnist
from emcl_jax.data import pickles
from emcl_jax.data import tfds_source
from emcl_jax.errors import DataError, first_line

FOLDER = 'cifar-100-python'
ARCHIVE = 'cifar-100-python.tar.gz'
SOURCES = ('auto', 'dir', 'download', 'tfds')
NUM_CLASSES = 100
PUT = (f'put the {FOLDER} folder (files train, test) or {ARCHIVE} from '
       'https://www.cs.toronto.edu/~kriz/cifar.html in data_dir')


def decode(batch, what: str) -> tuple[np.ndarray, np.ndarray]:
  """Images [N, 32, 32, 3] uint8 (HWC) and labels [N] int32 of one unpickled
  CIFAR-100 file.

  Raises:
    DataError: missing keys, wrong shapes, or labels outside 0..99.
  """
  fix = f're-download it ({PUT})'
  if not isinstance(batch, dict):
    raise DataError(f'{what} holds a {type(batch).__name__}, not the dict of '
                    f'a CIFAR-100 file; {fix}')
  batch = pickles.str_keys(batch)
  if 'data' not in batch or 'fine_labels' not in batch:
    raise DataError(f'{what} lacks the keys data and fine_labels: not a '
                    f'CIFAR-100 file (CIFAR-10?); {fix}')
  x = np.asarray(batch['data'])
  y = np.asarray(batch['fine_labels'])
  if x.ndim != 2 or x.shape[1] != 3072 or x.dtype != np.uint8:
    raise DataError(f'{what} has data of shape {x.shape} and dtype {x.dtype}'
                    f', not [N, 3072] uint8; {fix}')
  if y.shape != (x.shape[0],) or not np.issubdtype(y.dtype, np.integer):
    raise DataError(f'{what} has {y.shape} fine_labels for {x.shape[0]} '
                    f'images; {fix}')
  if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
    raise DataError(f'{what} has fine_labels in {y.min()}..{y.max()}, outside'
                    f' 0..99; {fix}')
  images = x.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  return np.ascontiguousarray(images), y.astype(np.int32)


def _read_files(data_dir: str) -> tuple[dict[str, bytes], str]:
  """The raw bytes of `train` and `test`, and where they were found."""
  for folder in (data_dir, os.path.join(data_dir, FOLDER)):
    found = [n for n in ('train', 'test')
             if os.path.isfile(os.path.join(folder, n))]
    if found == ['train'] or found == ['test']:
      missing = 'test' if found == ['train'] else 'train'
      raise DataError(f'{missing} not found in {folder}; {PUT}')
    if found:
      return {name: pickles.read_bytes(os.path.join(folder, name), PUT)
              for name in found}, folder
  archive = os.path.join(data_dir, ARCHIVE)
  if os.path.isfile(archive):
    return _read_archive(archive), archive
  raise DataError(f'no CIFAR-100 in {data_dir}: {PUT}')


def _read_archive(path: str) -> dict[str, bytes]:
  """`train` and `test` read from the .tar.gz without extracting it."""
  raw = {}
  try:
    with tarfile.open(path, 'r:gz') as tar:
      for name in ('train', 'test'):
        try:
          member = tar.getmember(f'{FOLDER}/{name}')
        except KeyError:
          raise DataError(f'{path} lacks {FOLDER}/{name}; re-download it '
                          f'({PUT})') from None
        f = tar.extractfile(member)
        if f is None:
          raise DataError(f'{path}: {FOLDER}/{name} is not a file; '
                          f're-download it ({PUT})')
        raw[name] = f.read()
  except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
    raise DataError(f'{path} is truncated or corrupt '
                    f'({first_line(e)[:120]}); re-download it '
                    f'({PUT})') from None
  return raw


def read_dir(data_dir: str) -> mnist.Split:
  """Reads CIFAR-100 from `data_dir` (folder, its parent, or the .tar.gz).

  Returns:
    A Split with images [N, 32, 32, 3] uint8 and fine labels [N] int32.

  Raises:
    DataError: missing, truncated or corrupt files, or wrong shapes.
  """
  if not os.path.isdir(data_dir):
    raise DataError(f'data_dir={data_dir!r} is not a directory; {PUT}')
  raw, where = _read_files(data_dir)
  out = []
  for name in ('train', 'test'):
    what = (f'{where}:{FOLDER}/{name}' if where.endswith('.gz')
            else os.path.join(where, name))
    fix = f're-download it ({PUT})'
    out.extend(decode(pickles.loads(raw.pop(name), what, fix), what))
  return mnist.Split(*out, f'dir:{os.path.abspath(where)}')


def read_tfds(data_dir: str | None = None) -> mnist.Split:
  """Loads TFDS `cifar100` (fine labels; prepared under `data_dir` on first
  use, which needs network access and TensorFlow: the `tfds` extra).

  Raises:
    DataError: TFDS is not installed, TensorFlow is missing for the first
      use, or the download or preparation fails.
  """
  return mnist.Split(*tfds_source.read('cifar100', data_dir, PUT),
                     'tfds:cifar100')


def has_files(data_dir: str | None) -> bool:
  """Whether `data_dir` holds CIFAR-100 as `read_dir` takes it: the
  cifar-100-python folder, its files, or the archive."""
  if not data_dir:
    return False
  return any(os.path.exists(os.path.join(data_dir, *p)) for p in (
      (FOLDER, 'train'), ('train',), (ARCHIVE,)))


def load(source: str = 'auto', data_dir: str | None = None) -> mnist.Split:
  """CIFAR-100 from the requested source: 'dir' (`data_dir`'s files),
  'download' (the official archive, fetched once into the cache folder
  `data_dir`, else $EMCL_JAX_DATA, else ~/.cache/emcl_jax:
  `download.fetch`), 'auto' (`data_dir`'s files when it holds them, else
  'download') or 'tfds'.

  Raises:
    DataError: an unknown source, no data_dir for 'dir', files that cannot
      be read, or a download that fails (one line naming the URL and the
      manual way).
  """
  if source not in SOURCES:
    raise DataError(f'unknown data source {source!r} for cifar100; use one '
                    f'of {SOURCES} (there is no bundled copy)')
  if source == 'tfds':
    return read_tfds(data_dir)
  if source == 'dir' or (source == 'auto' and has_files(data_dir)):
    if not data_dir:
      raise DataError(f"data_source='dir' needs data_dir: {PUT}, or use "
                      "data_source='download'")
    return read_dir(data_dir)
  return read_dir(download.fetch(download.CIFAR100, data_dir))
