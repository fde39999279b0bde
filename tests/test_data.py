"""IDX reader on files the test writes (good and corrupt), and the tasks."""

import gzip
import os

from absl.testing import absltest
import numpy as np

import fixtures
from emcl_jax import data
from emcl_jax.training import engine
from emcl_jax.data import idx
from emcl_jax.data import mnist
from emcl_jax.data import permutations
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.errors import DataError


class IdxTest(absltest.TestCase):

  def test_round_trip_plain_and_gzip(self):
    folder = fixtures.tmp_dir(self)
    for gz in (False, True):
      arrays = fixtures.write_mnist(folder, gz=gz, seed=int(gz))
      split = mnist.read_dir(folder)
      np.testing.assert_array_equal(split.train_x,
                                    arrays['train-images-idx3-ubyte'])
      np.testing.assert_array_equal(split.test_y,
                                    arrays['t10k-labels-idx1-ubyte'])
      self.assertEqual(split.train_x.dtype, np.uint8)
      self.assertEqual(split.train_y.dtype, np.int32)
      for f in os.listdir(folder):
        os.remove(os.path.join(folder, f))

  def test_header_bytes_match_the_format(self):
    path = os.path.join(fixtures.tmp_dir(self), 'x-idx3-ubyte')
    idx.write_idx(path, np.zeros((2, 3, 4), np.uint8))
    with open(path, 'rb') as f:
      raw = f.read()
    self.assertEqual(raw[:4], b'\x00\x00\x08\x03')  # magic 2051
    self.assertEqual(raw[4:16], bytes([0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4]))
    self.assertLen(raw, 16 + 24)

  def test_wrong_magic(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_mnist(folder)
    # A label file where an image file belongs: magic 2049, expected 2051.
    path = os.path.join(folder, 'train-images-idx3-ubyte.gz')
    idx.write_idx(path, np.zeros(30, np.uint8))
    with self.assertRaisesRegex(DataError, 'magic number 2049 .expected 2051'):
      mnist.read_dir(folder)

  def test_garbage_file(self):
    path = os.path.join(fixtures.tmp_dir(self), 'junk')
    with open(path, 'wb') as f:
      f.write(b'PK\x03\x04 not an idx file at all')
    with self.assertRaisesRegex(DataError, 'not an MNIST IDX'):
      idx.read_idx(path)

  def test_truncated(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_mnist(folder, gz=False)
    path = os.path.join(folder, 't10k-images-idx3-ubyte')
    with open(path, 'rb') as f:
      raw = f.read()
    with open(path, 'wb') as f:
      f.write(raw[:-100])
    with self.assertRaisesRegex(DataError, 'truncated'):
      mnist.read_dir(folder)

  def test_truncated_gzip_stream(self):
    path = os.path.join(fixtures.tmp_dir(self), 'a-idx1-ubyte.gz')
    idx.write_idx(path, np.arange(100, dtype=np.uint8))
    with open(path, 'rb') as f:
      raw = f.read()
    with open(path, 'wb') as f:
      f.write(raw[:len(raw) // 2])
    with self.assertRaisesRegex(DataError, 'cannot read'):
      idx.read_idx(path)

  def test_missing_file_names_it(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_mnist(folder)
    os.remove(os.path.join(folder, 'train-labels-idx1-ubyte.gz'))
    with self.assertRaisesRegex(DataError, 'train-labels-idx1-ubyte'):
      mnist.read_dir(folder)

  def test_count_mismatch(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_mnist(folder)
    idx.write_idx(os.path.join(folder, 'train-labels-idx1-ubyte.gz'),
                  np.zeros(29, np.uint8))
    with self.assertRaisesRegex(DataError, 'do not match'):
      mnist.read_dir(folder)

  def test_gzip_reader_reads_alternate_spelling(self):
    folder = fixtures.tmp_dir(self)
    arrays = fixtures.write_mnist(folder, gz=False)
    os.rename(os.path.join(folder, 'train-images-idx3-ubyte'),
              os.path.join(folder, 'train-images.idx3-ubyte'))
    split = mnist.read_dir(folder)
    np.testing.assert_array_equal(split.train_x,
                                  arrays['train-images-idx3-ubyte'])

  def test_gzip_file_is_really_gzip(self):
    path = os.path.join(fixtures.tmp_dir(self), 'a-idx1-ubyte.gz')
    idx.write_idx(path, np.arange(5, dtype=np.uint8))
    with gzip.open(path, 'rb') as f:
      self.assertEqual(f.read()[:4], b'\x00\x00\x08\x01')


class BenchmarkTest(absltest.TestCase):

  def test_bundled_data(self):
    split = mnist.load()
    self.assertEqual(split.train_x.shape, (4000, 28, 28))
    self.assertEqual(split.test_x.shape, (1000, 28, 28))
    np.testing.assert_array_equal(np.bincount(split.train_y), 400)
    np.testing.assert_array_equal(np.bincount(split.test_y), 100)
    self.assertEqual(split.source, 'bundled:mnist-5k')

  def test_permuted_tasks(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_mnist(folder, n_train=50, n_test=7)
    split = mnist.read_dir(folder)
    tasks = permutations.permuted_tasks(split, 3, 20, seed=1)
    self.assertEqual(tasks.train_x.shape, (3, 20, 784))
    self.assertEqual(tasks.test_x.shape, (3, 7, 784))
    self.assertEqual(tasks.train_x.dtype, np.uint8)
    flat_test = split.test_x.reshape(7, -1)
    flat_train = split.train_x.reshape(50, -1)
    # Random pixels: each pixel's 7 test values identify it.
    column = {flat_test[:, i].tobytes(): i for i in range(784)}
    self.assertLen(column, 784)
    perms = []
    for t in range(3):
      # Recover the permutation from the test set: output pixel j is input
      # pixel perm[j], for every test image at once.
      perm = np.array([column[tasks.test_x[t][:, j].tobytes()]
                       for j in range(784)])
      self.assertLen(set(perm.tolist()), 784)  # a permutation
      self.assertGreater(np.sum(perm != np.arange(784)), 700)  # not identity
      np.testing.assert_array_equal(tasks.test_x[t], flat_test[:, perm])
      np.testing.assert_array_equal(tasks.test_y[t], split.test_y)
      # Training samples: 20 distinct training images, with their labels,
      # under the same permutation as the test set.
      rows = {flat_train[i, perm].tobytes(): i for i in range(50)}
      picked = [rows[row.tobytes()] for row in tasks.train_x[t]]
      self.assertLen(set(picked), 20)
      np.testing.assert_array_equal(tasks.train_y[t], split.train_y[picked])
      perms.append(perm)
    self.assertFalse(np.array_equal(perms[0], perms[1]))
    self.assertFalse(np.array_equal(tasks.test_x[0], tasks.test_x[1]))
    again = permutations.permuted_tasks(split, 3, 20, seed=1)
    np.testing.assert_array_equal(again.train_x, tasks.train_x)

  def test_many_permutations_loads_the_papers_sizes(self):
    # Many Permutations (Sec. V-A): 100 tasks of 200 samples, each its own
    # permutation of the same test images (the bundled MNIST subset).
    tasks = data.load('many_permutations')
    self.assertEqual(tasks.train_x.shape, (100, 200, 784))
    self.assertEqual(tasks.train_y.shape, (100, 200))
    self.assertTrue(tasks.source.startswith('bundled'), tasks.source)
    # Every test image keeps its pixel values under each permutation, and
    # no two tasks share a permutation.
    first = np.sort(tasks.test_x[:, 0], axis=-1)
    np.testing.assert_array_equal(first, np.broadcast_to(first[0],
                                                         first.shape))
    views = {tasks.test_x[t, :3].tobytes() for t in range(100)}
    self.assertLen(views, 100)
    np.testing.assert_array_equal(tasks.test_y,
                                  np.broadcast_to(tasks.test_y[0],
                                                  tasks.test_y.shape))

  def test_joint_stream_shuffles_all_tasks_keeping_identities(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_mnist(folder, n_train=50, n_test=7)
    tasks = permutations.permuted_tasks(mnist.read_dir(folder), 3, 20, seed=1)
    merged = tasks_lib.joint(tasks, seed=0)
    self.assertEqual(merged.train_x.shape, (1, 60, 784))
    self.assertEqual(merged.train_t.shape, (1, 60))
    self.assertEqual((merged.num_tasks, merged.num_test_tasks), (1, 3))
    np.testing.assert_array_equal(merged.test_x, tasks.test_x)
    np.testing.assert_array_equal(np.bincount(merged.train_t[0]), [20] * 3)
    # Every sample is one of its task's samples, with its label.
    for x, y, t in zip(merged.train_x[0], merged.train_y[0],
                       merged.train_t[0]):
      hits = np.flatnonzero((tasks.train_x[t] == x).all(1))
      self.assertIn(y, tasks.train_y[t][hits])
    # Shuffled: the first 20 samples are not all from task 0.
    self.assertGreater(len(set(merged.train_t[0, :20])), 1)
    xs, ys, ts = engine.batched(merged, 10)
    self.assertEqual(xs.shape, (1, 6, 10, 784))
    np.testing.assert_array_equal(ts.reshape(-1), merged.train_t[0])

  def test_load_errors(self):
    with self.assertRaisesRegex(DataError, "unknown dataset 'cifar10'"):
      data.load('cifar10')
    with self.assertRaisesRegex(DataError, 'exceeds the 4000 training'):
      data.load('mnist_permutations', samples_per_task=5000)
    with self.assertRaisesRegex(DataError, 'not a directory'):
      data.load('mnist_permutations', data_dir='/nonexistent/mnist')
    with self.assertRaisesRegex(DataError, 'unknown data source'):
      data.load('mnist_permutations', data_source='http')


if __name__ == '__main__':
  absltest.main()
