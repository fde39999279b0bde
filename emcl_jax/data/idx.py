"""Reader for the IDX format of MNIST and Fashion-MNIST (plain or gzipped).

Layout (big-endian): two zero bytes, a type code (0x08 = uint8), the number
of dimensions d, then d uint32 sizes, then the data. MNIST's image files have
magic 2051 (0x00000803), label files 2049 (0x00000801).
"""

import gzip
import os
import zlib

import numpy as np

from emcl_jax.errors import DataError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049


def read_idx(path: str, expect_magic: int | None = None) -> np.ndarray:
  """Reads one IDX file of uint8 data into a NumPy array.

  Args:
    path: the file, `.gz` or not.
    expect_magic: 2051 (images) or 2049 (labels) to check, or None.

  Returns:
    The array, shaped as the header says.

  Raises:
    DataError: unreadable, wrong magic number, or truncated file.
  """
  try:
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
      raw = f.read()
  except (OSError, EOFError, zlib.error) as e:
    raise DataError(f'cannot read {path}: {e}; re-download the file') from None
  if len(raw) < 4:
    raise DataError(f'{path} is truncated (no IDX header); re-download it')
  magic = int.from_bytes(raw[:4], 'big')
  ndim = raw[3]
  if raw[:2] != b'\x00\x00' or raw[2] != 0x08 or not 1 <= ndim <= 4 or (
      expect_magic is not None and magic != expect_magic):
    want = f' (expected {expect_magic})' if expect_magic else ''
    raise DataError(f'{path} has magic number {magic}{want}: not an MNIST '
                    'IDX uint8 file; point data_dir at the original files')
  header = 4 + 4 * ndim
  if len(raw) < header:
    raise DataError(f'{path} is truncated (incomplete header); re-download it')
  shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], 'big')
                for i in range(ndim))
  size = int(np.prod(shape))
  if len(raw) - header != size:
    raise DataError(f'{path} holds {len(raw) - header} data bytes but its '
                    f'header says {shape} = {size}: the file is truncated or '
                    'corrupt; re-download it')
  return np.frombuffer(raw, np.uint8, size, header).reshape(shape)


def write_idx(path: str, array: np.ndarray) -> None:
  """Writes a uint8 array as an IDX file (gzipped if `path` ends in .gz)."""
  array = np.asarray(array, np.uint8)
  header = bytes([0, 0, 0x08, array.ndim]) + b''.join(
      int(n).to_bytes(4, 'big') for n in array.shape)
  opener = gzip.open if path.endswith('.gz') else open
  with opener(path, 'wb') as f:
    f.write(header + array.tobytes())


def find_file(data_dir: str, stem: str) -> str | None:
  """Finds `stem` in data_dir under MNIST's usual spellings (.gz or not)."""
  variants = [stem, stem.replace('-idx', '.idx')]
  for name in variants:
    for suffix in ('', '.gz'):
      path = os.path.join(data_dir, name + suffix)
      if os.path.isfile(path):
        return path
  return None
