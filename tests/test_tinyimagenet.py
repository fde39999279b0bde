"""The TinyImageNet reader on a small tiny-imagenet-200 folder of real JPEGs:
shapes, labels (class colours survive JPEG), La-MAML's class ids, the
cache, errors, and the lazy PIL import."""

import os
import subprocess
import sys
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image

import fixtures
from test_download import closed_port
from emcl_jax.data import tinyimagenet
from emcl_jax.errors import DataError

# wnids.txt's order is not sorted; class ids are the sorted ranks.
WNIDS = ['n03', 'n01', 'n04', 'n02']
# Class id k (the sorted rank) is drawn in COLOURS[k]; class 3's are gray,
# and its first training image is a grayscale ('L') JPEG.
COLOURS = np.array([(220, 40, 40), (40, 220, 40), (40, 40, 220),
                    (128, 128, 128)])
TRAIN_PER_CLASS = 3
# val_<i>.JPEG -> class id, the annotation lines shuffled: 2 per class.
VAL = {0: 2, 1: 0, 2: 3, 3: 1, 4: 1, 5: 0, 6: 3, 7: 2}


def write_jpeg(path, class_id, index, gray=False, size=64):
  """A JPEG filled with the class's colour, its top-left 8x8 block with
  brightness 40 * index + 20 (the file's order in its class)."""
  img = np.empty((size, size, 3), np.uint8)
  img[:] = COLOURS[class_id]
  img[:8, :8] = 40 * index + 20
  if gray:
    Image.fromarray(img[..., 0], 'L').save(path, 'JPEG', quality=95)
  else:
    Image.fromarray(img).save(path, 'JPEG', quality=95)


def write_folder(parent):
  """tiny-imagenet-200 in `parent`, as the zip lays it out; its path."""
  folder = os.path.join(parent, tinyimagenet.FOLDER)
  wnids = sorted(WNIDS)
  with open(os.path.join(os.makedirs(folder) or folder, 'wnids.txt'),
            'w') as f:
    f.write(''.join(w + '\n' for w in WNIDS))
  for k, wnid in enumerate(wnids):
    images = os.path.join(folder, 'train', wnid, 'images')
    os.makedirs(images)
    with open(os.path.join(folder, 'train', wnid, f'{wnid}_boxes.txt'),
              'w') as f:
      f.write('ignored\n')
    for i in range(TRAIN_PER_CLASS):
      write_jpeg(os.path.join(images, f'{wnid}_{i}.JPEG'), k, i,
                 gray=(k == 3 and i == 0))
  val = os.path.join(folder, 'val', 'images')
  os.makedirs(val)
  lines = []
  for i, k in VAL.items():
    write_jpeg(os.path.join(val, f'val_{i}.JPEG'), k, i % 4)
    lines.append(f'val_{i}.JPEG\t{wnids[k]}\t0\t0\t63\t63\n')
  with open(os.path.join(folder, 'val', 'val_annotations.txt'), 'w') as f:
    f.write(''.join(lines[::-1]))
  os.makedirs(os.path.join(folder, 'test', 'images'))
  write_jpeg(os.path.join(folder, 'test', 'images', 'test_0.JPEG'), 0, 0)
  return folder


def colour_class(x):
  """The class id whose colour is nearest each image's bottom-right mean."""
  means = x[:, 16:, 16:].reshape(len(x), -1, 3).mean(axis=1)
  dist = ((means[:, None, :] - COLOURS[None]) ** 2).sum(-1)
  return dist.argmin(axis=1)


class ReadTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.parent = fixtures.tmp_dir(self)
    self.folder = write_folder(self.parent)

  def test_shapes_labels_and_order(self):
    split = tinyimagenet.read(self.parent, cache=False)
    self.assertEqual(split.train_x.shape, (12, 64, 64, 3))
    self.assertEqual(split.test_x.shape, (8, 64, 64, 3))
    for a in (split.train_x, split.test_x):
      self.assertEqual(a.dtype, np.uint8)
    for a in (split.train_y, split.test_y):
      self.assertEqual(a.dtype, np.int32)
    # Grouped by sorted wnid (n01, n02, n03, n04 -> 0..3), files in name
    # order: each image shows its label's colour and its index's block.
    np.testing.assert_array_equal(split.train_y, np.repeat(np.arange(4), 3))
    np.testing.assert_array_equal(colour_class(split.train_x), split.train_y)
    np.testing.assert_allclose(split.train_x[:, 2, 2].mean(axis=1),
                               [20, 60, 100] * 4, atol=6)
    # Test labels from val_annotations.txt: val_i has class VAL[i]; within
    # a class, file names in order (val_1 before val_5).
    expected = sorted(VAL, key=lambda i: (VAL[i], f'val_{i}.JPEG'))
    np.testing.assert_array_equal(split.test_y, [VAL[i] for i in expected])
    np.testing.assert_array_equal(colour_class(split.test_x), split.test_y)
    np.testing.assert_allclose(split.test_x[:, 2, 2].mean(axis=1),
                               [40 * (i % 4) + 20 for i in expected], atol=6)
    self.assertEqual(split.source, f'dir:{self.folder}')

  def test_grayscale_jpeg_becomes_three_equal_channels(self):
    path = os.path.join(self.folder, 'train', 'n04', 'images', 'n04_0.JPEG')
    with Image.open(path) as im:
      self.assertEqual(im.mode, 'L')
    split = tinyimagenet.read(self.folder, cache=False)
    gray = split.train_x[9]  # class 3 (n04), its first file
    np.testing.assert_array_equal(gray[..., 0], gray[..., 1])
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    self.assertEqual(split.train_y[9], 3)

  def test_folder_or_parent(self):
    a = tinyimagenet.read(self.folder, cache=False)
    b = tinyimagenet.load('dir', self.parent, cache=False)
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x, y)

  def test_cache(self):
    cache = os.path.join(self.parent, tinyimagenet.FOLDER + '.npz')
    first = tinyimagenet.read(self.parent)
    self.assertTrue(os.path.isfile(cache))
    # Written beside the folder, no temporary file left.
    self.assertEqual(sorted(os.listdir(self.parent)),
                     sorted([tinyimagenet.FOLDER, os.path.basename(cache)]))
    # The second read decodes nothing and gives the same arrays.
    with mock.patch.object(tinyimagenet, 'read_image',
                           side_effect=AssertionError('decoded')):
      second = tinyimagenet.read(self.folder)
    for x, y in zip(first, second):
      np.testing.assert_array_equal(x, y)
    # A changed image is decoded again, and the cache rewritten.
    path = os.path.join(self.folder, 'train', 'n01', 'images', 'n01_2.JPEG')
    write_jpeg(path, 1, 2)
    third = tinyimagenet.read(self.folder)
    self.assertEqual(colour_class(third.train_x[2:3])[0], 1)
    with mock.patch.object(tinyimagenet, 'read_image',
                           side_effect=AssertionError('decoded')):
      fourth = tinyimagenet.read(self.folder)
    np.testing.assert_array_equal(fourth.train_x, third.train_x)

  def test_changed_annotations_refresh_the_cache(self):
    path = os.path.join(self.folder, 'val', 'val_annotations.txt')
    def annotate(first_of_n02):
      # val_0.. to n01, val_<first_of_n02>.. to n02: the same files in the
      # same order either way, only the labels differ.
      with open(path, 'w') as f:
        f.write(''.join(
            f'val_{i}.JPEG\t{"n02" if i >= first_of_n02 else "n01"}\t0\t0'
            '\t63\t63\n' for i in range(8)))
    annotate(4)
    self.assertEqual(tinyimagenet.read(self.folder).test_y.tolist(),
                     [0] * 4 + [1] * 4)
    annotate(3)
    self.assertEqual(tinyimagenet.read(self.folder).test_y.tolist(),
                     [0] * 3 + [1] * 5)

  def test_corrupt_or_unwritable_cache_is_ignored(self):
    cache = tinyimagenet.cache_path(self.folder)
    with open(cache, 'wb') as f:
      f.write(b'PK\x03\x04 not a zip')
    expected = tinyimagenet.read(self.folder, cache=False)
    split = tinyimagenet.read(self.folder)
    np.testing.assert_array_equal(split.train_x, expected.train_x)
    with np.load(cache) as z:  # rewritten
      np.testing.assert_array_equal(z['test_y'], expected.test_y)
    os.remove(cache)
    os.makedirs(cache)  # a folder in its place: nothing can be written
    split = tinyimagenet.read(self.folder)
    np.testing.assert_array_equal(split.test_x, expected.test_x)
    self.assertEqual(sorted(os.listdir(self.parent)),
                     sorted([tinyimagenet.FOLDER, os.path.basename(cache)]))
    self.assertEqual(os.listdir(cache), [])

  def test_no_cache_writes_nothing(self):
    tinyimagenet.read(self.folder, cache=False)
    self.assertEqual(os.listdir(self.parent), [tinyimagenet.FOLDER])


class ErrorTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.parent = fixtures.tmp_dir(self)
    self.folder = write_folder(self.parent)

  def path(self, *parts):
    return os.path.join(self.folder, *parts)

  def assert_error(self, regex):
    with self.assertRaisesRegex(DataError, regex) as cm:
      tinyimagenet.read(self.parent, cache=False)
    self.assertNotIn('\n', str(cm.exception))

  def test_missing_wnids(self):
    os.remove(self.path('wnids.txt'))
    self.assert_error(r'^wnids.txt not found in \S+/tiny-imagenet-200; unzip '
                      r'http://cs231n.stanford.edu/tiny-imagenet-200.zip')

  def test_duplicate_wnid(self):
    with open(self.path('wnids.txt'), 'a') as f:
      f.write('n01\n')
    self.assert_error(r'wnids.txt lists n01 twice')

  def test_missing_class_folder(self):
    os.rename(self.path('train', 'n02'), self.path('train', 'x02'))
    self.assert_error(r'^class folder train/n02/images not found in \S+; ')

  @parameterized.named_parameters(
      ('garbage', lambda raw: b'not a jpeg'),
      ('truncated', lambda raw: raw[:len(raw) // 2]),
      ('empty', lambda raw: b''),
  )
  def test_corrupt_jpeg(self, corrupt):
    path = self.path('train', 'n03', 'images', 'n03_1.JPEG')
    with open(path, 'rb') as f:
      raw = f.read()
    with open(path, 'wb') as f:
      f.write(corrupt(raw))
    self.assert_error(r'^cannot decode image \S+/train/n03/images/'
                      r'n03_1.JPEG \(.+\); replace it from http')

  def test_corrupt_val_jpeg(self):
    with open(self.path('val', 'images', 'val_6.JPEG'), 'wb') as f:
      f.write(b'\xff\xd8\xff')
    self.assert_error(r'^cannot decode image \S+/val/images/val_6.JPEG ')

  def test_wrong_size(self):
    write_jpeg(self.path('train', 'n01', 'images', 'n01_0.JPEG'), 0, 0,
               size=32)
    self.assert_error(r'^image \S+/n01_0.JPEG is 32x32, not 64x64; replace')

  def test_missing_val_annotations(self):
    os.remove(self.path('val', 'val_annotations.txt'))
    self.assert_error(r'^val/val_annotations.txt not found in \S+; unzip ')

  @parameterized.named_parameters(
      ('unknown_wnid', 'val_0.JPEG\tn09\t0\t0\t1\t1\n',
       r'line 1 labels val_0.JPEG n09, which is not in wnids.txt'),
      ('malformed', 'val_0.JPEG n01\n', r'line 1 is not <file>TAB<wnid>'),
      ('unlabelled_image', 'val_0.JPEG\tn01\n',
       r'val/images/val_1.JPEG has no line in \S+val_annotations.txt'),
      ('missing_image', ''.join(f'val_{i}.JPEG\tn01\n' for i in range(9)),
       r'labels val_8.JPEG, which is not in \S+/val/images'),
      ('twice', 'val_0.JPEG\tn01\nval_0.JPEG\tn02\n',
       r'line 2 labels val_0.JPEG a second time'),
  )
  def test_bad_annotations(self, text, regex):
    with open(self.path('val', 'val_annotations.txt'), 'w') as f:
      f.write(text)
    self.assert_error(regex)

  def test_sources(self):
    # No folder: 'auto' fetches the official zip (from a mirror at a closed
    # port here: no network), 'dir' refuses.
    port = closed_port()
    env = {'EMCL_JAX_MIRROR': f'http://127.0.0.1:{port}',
           'EMCL_JAX_DATA': fixtures.tmp_dir(self)}
    with mock.patch.dict(os.environ, env):
      with self.assertRaisesRegex(
          DataError, rf'^cannot download http://127.0.0.1:{port}/tiny-'
          'imagenet-200.zip: .*yourself from http://cs231n.stanford.edu/'):
        tinyimagenet.load('auto', None)
    with self.assertRaisesRegex(DataError, "data_source='dir' needs "
                                'data_dir: unzip http'):
      tinyimagenet.load('dir', None)
    with self.assertRaisesRegex(DataError, "source 'tfds' cannot provide "
                                'TinyImageNet; use one of auto, dir, '
                                'download'):
      tinyimagenet.load('tfds', self.parent)
    with self.assertRaisesRegex(DataError, r'--data_dir \S+/nothing is not a '
                                'directory'):
      tinyimagenet.load('dir', os.path.join(self.parent, 'nothing'))


class ImportTest(absltest.TestCase):

  def test_import_does_not_load_pil(self):
    code = ('import sys, emcl_jax.data.tinyimagenet; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] == "PIL"))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True, env=fixtures.ENV).stdout
    self.assertEqual(out.strip(), '[]')


if __name__ == '__main__':
  absltest.main()
