"""CIFAR-100 and miniImageNet readers on files the tests write in the real
formats (good, truncated, wrong-shaped), the class split, and the registry."""

import io
import os
import pickle
import tarfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image

import fixtures
from test_download import closed_port
from emcl_jax import data
from emcl_jax.data import cifar100
from emcl_jax.data import miniimagenet
from emcl_jax.data import splits
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.errors import DataError


def py2_pickle(data, labels):
  """The bytes Python 2's cPickle (protocol 2) and NumPy 1 write for
  {'data': data, 'fine_labels': labels}, as in the real CIFAR files: byte
  strings (opcodes U, T) and numpy.core globals."""
  def short(b):
    return b'U' + bytes([len(b)]) + b
  def int4(n):
    return b'J' + int(n).to_bytes(4, 'little', signed=True)
  dtype = (b'cnumpy\ndtype\n' + short(b'u1') + b'K\x00K\x01\x87R(K\x03' +
           short(b'|') + b'NNN' + int4(-1) + int4(-1) + b'K\x00tb')
  array = (b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n'
           b'K\x00\x85' + short(b'b') + b'\x87R(K\x01' + int4(data.shape[0])
           + int4(data.shape[1]) + b'\x86' + dtype + b'\x89T' +
           len(data.tobytes()).to_bytes(4, 'little') + data.tobytes() + b'tb')
  label_list = b'](' + b''.join(b'K' + bytes([y]) for y in labels) + b'e'
  return (b'\x80\x02}(' + short(b'data') + array + short(b'fine_labels') +
          label_list + b'u.')


def tar_folder(folder):
  """cifar-100-python.tar.gz of folder/cifar-100-python, in a new folder."""
  out = os.path.join(folder, 'archive')
  os.makedirs(out)
  path = os.path.join(out, cifar100.ARCHIVE)
  with tarfile.open(path, 'w:gz') as tar:
    tar.add(os.path.join(folder, cifar100.FOLDER), cifar100.FOLDER)
  return out, path


def mini_cache(classes, per_class, size=84, seed=0):
  """A miniImageNet cache dict; image of class c, position j has pixel
  [0, 0] = (c's number, j, 7). class_dict lists indices in reverse."""
  n = len(classes) * per_class
  images = np.random.default_rng(seed).integers(
      0, 256, (n, size, size, 3), dtype=np.uint8)
  class_dict = {}
  for k, name in enumerate(classes):
    indices = list(range(k * per_class, (k + 1) * per_class))[::-1]
    for j, i in enumerate(indices):
      images[i, 0, 0] = (int(name[1:]), j, 7)
    class_dict[name] = indices
  return {'image_data': images, 'class_dict': class_dict}


MINI_CLASSES = {'train': ['n05', 'n01', 'n03', 'n08', 'n02', 'n07'],
                'val': ['n04', 'n09'], 'test': ['n06', 'n00']}


def write_mini(folder, per_class=6, size=84, skip=()):
  for split, classes in MINI_CLASSES.items():
    if split in skip:
      continue
    path = os.path.join(folder, f'mini-imagenet-cache-{split}.pkl')
    with open(path, 'wb') as f:
      pickle.dump(mini_cache(classes, per_class, size), f, protocol=4)


def write_png(path, value, size=(84, 84)):
  img = np.full((size[1], size[0], 3), value, np.uint8)
  Image.fromarray(img).save(path)


def truncate(path, keep=0.5):
  with open(path, 'rb') as f:
    raw = f.read()
  with open(path, 'wb') as f:
    f.write(raw[:int(len(raw) * keep)])


SMALL = dict(train_per_class=5, test_per_class=1, num_classes=10)


class Cifar100Test(parameterized.TestCase):

  def test_folder_parent_and_archive_read_the_same(self):
    folder = fixtures.tmp_dir(self)
    batches = fixtures.write_cifar(folder)
    archive_dir, _ = tar_folder(folder)
    for where in (folder, os.path.join(folder, cifar100.FOLDER), archive_dir):
      split = cifar100.read_dir(where)
      self.assertEqual(split.train_x.shape, (300, 32, 32, 3))
      self.assertEqual(split.test_x.shape, (100, 32, 32, 3))
      self.assertEqual(split.train_x.dtype, np.uint8)
      self.assertEqual(split.train_y.dtype, np.int32)
      np.testing.assert_array_equal(split.test_y, np.arange(100))
      # Row-major CHW: pixel (h, w, c) of image i is data[i, c*1024+h*32+w].
      raw = batches['train'][b'data']
      self.assertEqual(split.train_x[7, 2, 5, 1], raw[7, 1024 + 2 * 32 + 5])
      self.assertEqual(split.train_x[0, 31, 0, 2], raw[0, 2048 + 31 * 32])
      self.assertTrue(split.source.startswith('dir:'))
    self.assertTrue(split.source.endswith(cifar100.ARCHIVE))

  def test_python2_pickles(self):
    folder = fixtures.tmp_dir(self)
    batches = fixtures.write_cifar(folder)
    for name in ('train', 'test'):
      batch = batches[name]
      with open(os.path.join(folder, cifar100.FOLDER, name), 'wb') as f:
        f.write(py2_pickle(batch[b'data'], batch[b'fine_labels']))
    split = cifar100.read_dir(folder)
    np.testing.assert_array_equal(
        split.train_x, batches['train'][b'data'].reshape(
            300, 3, 32, 32).transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(split.train_y, np.arange(300) % 100)

  def test_truncated_pickle(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder)
    truncate(os.path.join(folder, cifar100.FOLDER, 'train'))
    with self.assertRaisesRegex(DataError, r'^\S+/train is truncated or '
                                'corrupt, not a data pickle .*re-download'):
      cifar100.read_dir(folder)

  def test_truncated_archive(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder)
    archive_dir, path = tar_folder(folder)
    truncate(path, 0.6)
    with self.assertRaisesRegex(DataError, 'tar.gz is truncated or corrupt'):
      cifar100.read_dir(archive_dir)

  def test_pickle_that_would_run_code_is_refused(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder)
    with open(os.path.join(folder, cifar100.FOLDER, 'test'), 'wb') as f:
      pickle.dump(io.StringIO('x'), f)  # names the global _io.StringIO
    with self.assertRaisesRegex(DataError, 'refusing global _io.StringIO'):
      cifar100.read_dir(folder)

  @parameterized.named_parameters(
      ('wide_rows', b'data', np.zeros((100, 3000), np.uint8),
       r'data of shape \(100, 3000\) .*not \[N, 3072\] uint8'),
      ('float_data', b'data', np.zeros((100, 3072), np.float32),
       'dtype float32, not'),
      ('short_labels', b'fine_labels', list(range(99)),
       r'has \(99,\) fine_labels for 100 images'),
      ('label_100', b'fine_labels', [100] * 100, r'in 100..100, outside 0..99'),
  )
  def test_bad_contents(self, key, value, message):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder)
    batch = fixtures.cifar_batch(100, 1)
    batch[key] = value
    with open(os.path.join(folder, cifar100.FOLDER, 'test'), 'wb') as f:
      pickle.dump(batch, f)
    with self.assertRaisesRegex(DataError, message):
      cifar100.read_dir(folder)

  def test_cifar10_file(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder)
    with open(os.path.join(folder, cifar100.FOLDER, 'test'), 'wb') as f:
      pickle.dump({b'data': np.zeros((2, 3072), np.uint8),
                   b'labels': [0, 1]}, f)
    with self.assertRaisesRegex(DataError, 'lacks the keys data and '
                                'fine_labels'):
      cifar100.read_dir(folder)

  def test_missing_files(self):
    folder = fixtures.tmp_dir(self)
    with self.assertRaisesRegex(DataError, 'no CIFAR-100 in .*put the '
                                'cifar-100-python folder'):
      cifar100.read_dir(folder)
    fixtures.write_cifar(folder)
    os.remove(os.path.join(folder, cifar100.FOLDER, 'test'))
    with self.assertRaisesRegex(DataError, 'test not found in'):
      cifar100.read_dir(folder)

  def test_without_files_auto_downloads_and_dir_refuses(self):
    # No files: 'auto' fetches the official archive (here from a mirror at
    # a closed port, so no network is touched), 'dir' does not.
    port = closed_port()
    env = {'EMCL_JAX_MIRROR': f'http://127.0.0.1:{port}',
           'EMCL_JAX_DATA': fixtures.tmp_dir(self)}
    with mock.patch.dict(os.environ, env):
      with self.assertRaisesRegex(
          DataError, rf'^cannot download http://127.0.0.1:{port}/cifar-100-'
          'python.tar.gz: .*; download cifar-100-python.tar.gz yourself from '
          r'https://www.cs.toronto.edu/~kriz/cifar.html'):
        cifar100.load('auto', None)
      with self.assertRaisesRegex(DataError, 'cannot download'):
        data.load('cifar100')
    with self.assertRaisesRegex(DataError, "data_source='dir' needs "
                                'data_dir: put the cifar-100-python'):
      cifar100.load('dir', None)
    with self.assertRaisesRegex(DataError, 'no bundled copy'):
      cifar100.load('bundled', None)


class MiniImageNetTest(absltest.TestCase):

  def test_pickles(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder)
    split = miniimagenet.read_pickles(folder, **SMALL)
    self.assertEqual(split.train_x.shape, (50, 84, 84, 3))
    self.assertEqual(split.test_x.shape, (10, 84, 84, 3))
    # Class ids are the sorted names n00..n09, here their numbers.
    np.testing.assert_array_equal(split.train_y, np.repeat(np.arange(10), 5))
    np.testing.assert_array_equal(split.test_y, np.arange(10))
    np.testing.assert_array_equal(split.train_x[:, 0, 0, 0], split.train_y)
    # The first five in class_dict's order train, the sixth tests.
    np.testing.assert_array_equal(split.train_x[:, 0, 0, 1],
                                  np.tile(np.arange(5), 10))
    np.testing.assert_array_equal(split.test_x[:, 0, 0, 1], 5)
    self.assertEqual(split.train_y.dtype, np.int32)
    self.assertEqual(miniimagenet.read_dir(folder, **SMALL).source,
                     split.source)

  def test_extra_images_are_ignored(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder, per_class=8)
    split = miniimagenet.read_pickles(folder, **SMALL)
    self.assertEqual(split.train_x.shape[0], 50)
    np.testing.assert_array_equal(split.test_x[:, 0, 0, 1], 5)

  def test_too_few_images(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder, per_class=6)
    with self.assertRaisesRegex(DataError, 'class n00 in .* has 6 images, '
                                r'fewer than the 600 needed \(500 train'):
      miniimagenet.read_dir(folder, num_classes=10)
    with self.assertRaisesRegex(DataError, 'found 10 classes in .*expected '
                                '100'):
      miniimagenet.read_dir(folder, train_per_class=5, test_per_class=1)

  def test_truncated_pickle(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder)
    truncate(os.path.join(folder, 'mini-imagenet-cache-val.pkl'))
    with self.assertRaisesRegex(DataError, 'cache-val.pkl is truncated or '
                                'corrupt.*mini-imagenet-cache-train.pkl'):
      miniimagenet.read_dir(folder, **SMALL)

  def test_wrong_image_shape(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder)
    path = os.path.join(folder, 'mini-imagenet-cache-test.pkl')
    with open(path, 'wb') as f:
      pickle.dump(mini_cache(MINI_CLASSES['test'], 6, size=32), f)
    with self.assertRaisesRegex(DataError, r'image_data \(12, 32, 32, 3\) '
                                r'uint8, not \[N, 84, 84, 3\] uint8'):
      miniimagenet.read_dir(folder, **SMALL)

  def test_bad_class_dict(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder)
    path = os.path.join(folder, 'mini-imagenet-cache-test.pkl')
    cache = mini_cache(MINI_CLASSES['test'], 6)
    cache['class_dict']['n06'] = [0, 12]
    with open(path, 'wb') as f:
      pickle.dump(cache, f)
    with self.assertRaisesRegex(DataError, 'class n06 indexes images 0..12 '
                                'of 12'):
      miniimagenet.read_dir(folder, **SMALL)
    cache = mini_cache(['n06', 'n01'], 6)
    with open(path, 'wb') as f:
      pickle.dump(cache, f)
    with self.assertRaisesRegex(DataError, 'class n01 appears twice'):
      miniimagenet.read_dir(folder, **SMALL)

  def test_missing_pickle(self):
    folder = fixtures.tmp_dir(self)
    write_mini(folder, skip=('val',))
    with self.assertRaisesRegex(DataError, 'mini-imagenet-cache-val.pkl not '
                                'found in'):
      miniimagenet.read_dir(folder, **SMALL)

  def test_image_folders(self):
    folder = fixtures.tmp_dir(self)
    # Classes b, a, c in two split folders; a's second image is larger.
    for split, cls in (('train', 'b'), ('train', 'a'), ('test', 'c')):
      os.makedirs(os.path.join(folder, split, cls))
      for j in range(3):
        size = (100, 90) if (cls, j) == ('a', 1) else (84, 84)
        write_png(os.path.join(folder, split, cls, f'{2 - j}.png'),
                  10 * ord(cls[0]) % 256 + 2 - j, size)
    os.makedirs(os.path.join(folder, 'train', '.cache'))
    counts = dict(train_per_class=2, test_per_class=1, num_classes=3)
    split = miniimagenet.read_dir(folder, **counts)
    self.assertEqual(split.train_x.shape, (6, 84, 84, 3))
    self.assertEqual(split.test_x.shape, (3, 84, 84, 3))
    np.testing.assert_array_equal(split.train_y, [0, 0, 1, 1, 2, 2])
    # File names in order: 0.png, 1.png train; 2.png tests.
    base = np.array([10 * ord(c) % 256 for c in 'abc'])
    np.testing.assert_array_equal(split.train_x[:, 40, 40, 0],
                                  np.repeat(base, 2) + [0, 1] * 3)
    np.testing.assert_array_equal(split.test_x[:, 3, 3, 2], base + 2)
    self.assertTrue(split.source.endswith(':folders'))

  def test_image_folder_errors(self):
    folder = fixtures.tmp_dir(self)
    for cls in ('x', 'y'):
      os.makedirs(os.path.join(folder, cls))
      for j in range(2):
        write_png(os.path.join(folder, cls, f'{j}.png'), j)
    counts = dict(train_per_class=1, test_per_class=1, num_classes=2)
    self.assertEqual(miniimagenet.read_dir(folder, **counts).train_x.shape,
                     (2, 84, 84, 3))
    with self.assertRaisesRegex(DataError, 'class x in .* has 2 images, fewer'
                                r' than the 3 needed \(2 train \+ 1 test\)'):
      miniimagenet.read_dir(folder, train_per_class=2, test_per_class=1,
                            num_classes=2)
    truncate(os.path.join(folder, 'y', '1.png'), 0.5)
    with self.assertRaisesRegex(DataError, r'cannot decode image \S+/y/1.png'
                                ' .*replace or delete it'):
      miniimagenet.read_dir(folder, **counts)

  def test_no_data(self):
    with self.assertRaisesRegex(DataError, 'not bundled and TFDS has no '
                                'miniImageNet: put mini-imagenet-cache-'):
      miniimagenet.load('auto', None)
    with self.assertRaisesRegex(DataError, "source 'tfds' cannot provide "
                                'miniImageNet .no bundled copy, no TFDS'):
      miniimagenet.load('tfds', '/tmp')
    with self.assertRaisesRegex(DataError, 'no miniImageNet in'):
      miniimagenet.load('dir', fixtures.tmp_dir(self))


def toy_data(num_classes=6, n_train=4, n_test=2):
  """Images whose first pixel is their class and second their index."""
  def make(n, offset):
    y = np.repeat(np.arange(num_classes), n)
    x = np.zeros((len(y), 3, 3), np.uint8)
    x[:, 0, 0] = y
    x[:, 0, 1] = np.arange(len(y)) + offset
    return x, y
  return (*make(n_train, 0), *make(n_test, 100))


class ClassSplitTest(parameterized.TestCase):

  def split(self, **kwargs):
    args = dict(num_tasks=3, classes_per_task=2, seed=0, source='toy',
                num_classes=6)
    args.update(kwargs)
    return splits.class_split(*toy_data(), **args)

  @parameterized.parameters('natural', 'random')
  def test_tasks(self, order):
    tasks = self.split(class_order=order)
    self.assertEqual(tasks.train_x.shape, (3, 8, 3, 3))
    self.assertEqual(tasks.test_x.shape, (3, 4, 3, 3))
    self.assertEqual(tasks.train_y.dtype, np.int32)
    self.assertEqual(tasks.class_mask.shape, (3, 6))
    self.assertEqual(tasks.class_mask.dtype, bool)
    np.testing.assert_array_equal(tasks.class_mask.sum(1), 2)
    np.testing.assert_array_equal(tasks.class_mask.sum(0), 1)  # disjoint
    for k in range(3):
      classes = np.flatnonzero(tasks.class_mask[k])
      # Global labels, matching the images; each class 4 train, 2 test.
      np.testing.assert_array_equal(tasks.train_x[k, :, 0, 0],
                                    tasks.train_y[k])
      np.testing.assert_array_equal(np.unique(tasks.train_y[k]), classes)
      np.testing.assert_array_equal(np.bincount(tasks.train_y[k])[classes],
                                    [4, 4])
      np.testing.assert_array_equal(np.unique(tasks.test_y[k]), classes)
      np.testing.assert_array_equal(np.bincount(tasks.test_y[k])[classes],
                                    [2, 2])
      self.assertLen(set(tasks.train_x[k, :, 0, 1]), 8)  # distinct images
      # Test sets keep the source order.
      self.assertTrue(np.all(np.diff(tasks.test_x[k, :, 0, 1].astype(int))
                             > 0))
    if order == 'natural':
      np.testing.assert_array_equal(
          [np.flatnonzero(m) for m in tasks.class_mask],
          [[0, 1], [2, 3], [4, 5]])

  def test_random_order_depends_on_seed_only(self):
    masks = [self.split(class_order='random', seed=s).class_mask
             for s in range(6)]
    again = self.split(class_order='random', seed=3)
    np.testing.assert_array_equal(again.class_mask, masks[3])
    np.testing.assert_array_equal(again.train_x, self.split(
        class_order='random', seed=3).train_x)
    self.assertGreater(len({m.tobytes() for m in masks}), 1)

  def test_streams_are_shuffled_by_seed(self):
    a, b = self.split(seed=0), self.split(seed=1)
    np.testing.assert_array_equal(a.class_mask, b.class_mask)
    self.assertFalse(np.array_equal(a.train_x, b.train_x))
    np.testing.assert_array_equal(np.sort(a.train_x[:, :, 0, 1], 1),
                                  np.sort(b.train_x[:, :, 0, 1], 1))
    np.testing.assert_array_equal(a.train_x, self.split(seed=0).train_x)
    # Shuffled: not sorted by class.
    self.assertFalse(np.all(np.diff(a.train_y, axis=1) >= 0))

  def test_samples_per_task_and_fewer_tasks(self):
    tasks = self.split(num_tasks=2, samples_per_task=3)
    self.assertEqual(tasks.train_x.shape, (2, 3, 3, 3))
    self.assertEqual(tasks.class_mask.shape, (2, 6))
    np.testing.assert_array_equal(tasks.train_y,
                                  self.split(num_tasks=2).train_y[:, :3])

  def test_unbalanced_classes_truncate_to_equal_counts(self):
    train_x, train_y, test_x, test_y = toy_data()
    keep = np.flatnonzero(test_y != 5).tolist() + [10]  # one image of 5
    tasks = splits.class_split(train_x[1:], train_y[1:], test_x[keep],
                               test_y[keep], num_tasks=3, classes_per_task=2,
                               seed=0, source='toy', num_classes=6)
    self.assertEqual(tasks.train_x.shape[1], 7)  # class 0 lost one image
    self.assertEqual(tasks.test_x.shape[1], 3)  # class 5 has one test image
    np.testing.assert_array_equal(np.sort(tasks.test_y[2]), [4, 4, 5])

  @parameterized.named_parameters(
      ('too_many_tasks', dict(num_tasks=4),
       'num_tasks=4 exceeds the 3 tasks of 2 classes'),
      ('too_many_samples', dict(samples_per_task=9),
       'samples_per_task=9 is outside 1..8, the training images per task'),
      ('no_samples', dict(samples_per_task=0),
       'samples_per_task=0 is outside 1..8'),
      ('bad_order', dict(class_order='sorted'), "unknown class order 'sorted'"),
      ('labels', dict(num_classes=5), r'labels of toy lie in 0..5, outside '
       r'0..4'),
  )
  def test_errors(self, kwargs, message):
    with self.assertRaisesRegex(DataError, message):
      self.split(**kwargs)

  def test_data_errors(self):
    train_x, train_y, test_x, test_y = toy_data()
    args = dict(num_tasks=3, classes_per_task=2, seed=0, source='toy',
                num_classes=6)
    with self.assertRaisesRegex(DataError, r'train images \(24, 3, 3\) and '
                                r'labels \(23,\) of toy do not match'):
      splits.class_split(train_x, train_y[1:], test_x, test_y, **args)
    with self.assertRaisesRegex(DataError, 'class 3 of toy has 4 training '
                                'and 0 test images'):
      splits.class_split(train_x, train_y, test_x[test_y != 3],
                         test_y[test_y != 3], **args)

  def test_joint_keeps_class_mask(self):
    tasks = self.split()
    merged = tasks_lib.joint(tasks, seed=0)
    np.testing.assert_array_equal(merged.class_mask, tasks.class_mask)
    self.assertEqual(merged.train_x.shape, (1, 24, 3, 3))
    for y, t in zip(merged.train_y[0], merged.train_t[0]):
      self.assertTrue(merged.class_mask[t, y])


class RegistryTest(absltest.TestCase):

  def test_split_mnist_bundled(self):
    tasks = data.load('split_mnist')
    self.assertEqual(tasks.train_x.shape, (5, 800, 28, 28))
    self.assertEqual(tasks.test_x.shape, (5, 200, 28, 28))
    self.assertEqual(tasks.train_x.dtype, np.uint8)
    self.assertEqual((tasks.num_classes, tasks.source),
                     (10, 'bundled:mnist-5k'))
    for k in range(5):
      np.testing.assert_array_equal(np.flatnonzero(tasks.class_mask[k]),
                                    [2 * k, 2 * k + 1])
      np.testing.assert_array_equal(np.bincount(tasks.train_y[k],
                                                minlength=10)[2 * k:2 * k + 2],
                                    [400, 400])
      np.testing.assert_array_equal(np.bincount(tasks.test_y[k],
                                                minlength=10)[2 * k:2 * k + 2],
                                    [100, 100])
    small = data.load('split_mnist', num_tasks=2, samples_per_task=50,
                      class_order='random', seed=1)
    self.assertEqual(small.train_x.shape, (2, 50, 28, 28))
    self.assertIsNone(data.load('mnist_permutations', num_tasks=1,
                                samples_per_task=10).class_mask)

  def test_cifar100_registry(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder, n_train=300, n_test=200)
    # The default 2,500 samples per task needs the full data.
    with self.assertRaisesRegex(DataError, 'samples_per_task=2500 is outside'
                                ' 1..15, the training images per task'):
      data.load('cifar100', data_dir=folder)
    tasks = data.load('cifar100', data_dir=folder, samples_per_task=15)
    self.assertEqual(tasks.train_x.shape, (20, 15, 32, 32, 3))
    self.assertEqual(tasks.test_x.shape, (20, 10, 32, 32, 3))
    self.assertEqual(tasks.num_classes, 100)
    np.testing.assert_array_equal(np.flatnonzero(tasks.class_mask[19]),
                                  [95, 96, 97, 98, 99])
    small = data.load('cifar100', data_dir=folder, num_tasks=3,
                      samples_per_task=10, class_order='random')
    self.assertEqual(small.train_x.shape, (3, 10, 32, 32, 3))
    with self.assertRaisesRegex(DataError, 'num_tasks=21 is outside 1..20 '
                                'for cifar100'):
      data.load('cifar100', data_dir=folder, num_tasks=21)

  def test_registry_errors(self):
    with self.assertRaisesRegex(DataError, "unknown class order 'bogus'; use "
                                "class_order='natural' or"):
      data.load('split_mnist', class_order='bogus')
    with self.assertRaisesRegex(DataError, 'num_tasks=6 is outside 1..5'):
      data.load('split_mnist', num_tasks=6)
    with self.assertRaisesRegex(DataError, 'found 10 classes in .*, '
                                'expected 100; put mini-imagenet-cache'):
      folder = fixtures.tmp_dir(self)
      write_mini(folder)
      data.load('miniimagenet', data_dir=folder)
    for name in data.BENCHMARKS:
      with self.subTest(name):
        with self.assertRaises(DataError) as ctx:
          data.load(name, data_source='dir',
                    data_dir='/nonexistent/folder')
        self.assertNotIn('\n', str(ctx.exception))


if __name__ == '__main__':
  absltest.main()
