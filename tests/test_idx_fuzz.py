"""The IDX reader on random and corrupted bytes: a fixed-seed loop of
several hundred files, plain and gzipped, each read either as an array that
matches its header or refused with the library's DataError, never another
exception, never a hang (each read is bounded in time)."""

import gzip
import os
import time

from absl.testing import absltest
import numpy as np

import fixtures
from emcl_jax.data import idx
from emcl_jax.errors import DataError

CASES = 400


def _valid(rng):
  ndim = int(rng.integers(1, 4))
  shape = tuple(int(n) for n in rng.integers(1, 6, ndim))
  array = rng.integers(0, 256, shape, dtype=np.uint8)
  header = bytes([0, 0, 0x08, ndim]) + b''.join(
      n.to_bytes(4, 'big') for n in shape)
  return header + array.tobytes()


def _case(rng):
  """Random bytes, or a valid file truncated, extended or bit-flipped."""
  kind = int(rng.integers(4))
  if kind == 0:
    return bytes(rng.integers(0, 256, int(rng.integers(0, 64)),
                              dtype=np.uint8))
  raw = bytearray(_valid(rng))
  if kind == 1:
    return bytes(raw[:int(rng.integers(0, len(raw)))])
  if kind == 2:
    return bytes(raw) + bytes(rng.integers(0, 256, int(rng.integers(1, 9)),
                                           dtype=np.uint8))
  for _ in range(int(rng.integers(1, 4))):
    raw[int(rng.integers(len(raw)))] ^= 1 << int(rng.integers(8))
  return bytes(raw)


class IdxFuzzTest(absltest.TestCase):

  def test_random_and_corrupted_files(self):
    rng = np.random.default_rng(0)
    folder = fixtures.tmp_dir(self)
    outcomes = {'read': 0, 'refused': 0}
    start = time.perf_counter()
    for i in range(CASES):
      raw = _case(rng)
      gz = bool(i % 2)
      path = os.path.join(folder, f'case{i}' + ('.gz' if gz else ''))
      if gz and rng.random() < 0.5:
        payload = gzip.compress(raw)
        # Corrupt the compressed stream itself half of the time.
        cut = int(rng.integers(1, len(payload)))
        payload = payload[:cut] if rng.random() < 0.5 else (
            payload[:cut] + bytes([payload[cut] ^ 0xFF]) + payload[cut + 1:]
            if cut < len(payload) else payload)
      else:
        payload = gzip.compress(raw) if gz else raw
      with open(path, 'wb') as f:
        f.write(payload)
      t0 = time.perf_counter()
      try:
        array = idx.read_idx(path)
      except DataError as e:
        self.assertNotIn('\n', str(e))
        outcomes['refused'] += 1
      else:
        # Accepted: the array is exactly what the header describes.
        header = 4 + 4 * array.ndim
        self.assertEqual(array.tobytes(), raw[header:])
        self.assertEqual(array.shape, tuple(
            int.from_bytes(raw[4 + 4 * d:8 + 4 * d], 'big')
            for d in range(array.ndim)))
        outcomes['read'] += 1
      self.assertLess(time.perf_counter() - t0, 2.0, path)
    self.assertEqual(sum(outcomes.values()), CASES)
    self.assertGreater(outcomes['refused'], CASES // 2)
    self.assertLess(time.perf_counter() - start, 60.0)
    print(f'IDX fuzz: {CASES} cases, {outcomes}, '
          f'{time.perf_counter() - start:.2f} s')


if __name__ == '__main__':
  absltest.main()
