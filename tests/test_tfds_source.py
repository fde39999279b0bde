"""The TFDS reader against a stand-in `tensorflow_datasets` module: the
arrays it returns come from the builder's data source (images through the
benchmark's layout function, labels as int32), and each way it can fail is
one DataError naming its cause."""

import sys
import types
from unittest import mock

from absl.testing import absltest
import numpy as np

from emcl_jax.data import tfds_source
from emcl_jax.errors import DataError


def fake_tfds(prepared=True, splits=None, fail=None):
  """A module with tfds's few entry points the reader uses; `splits` maps a
  split name to its list of {'image', 'label'} records."""
  calls = []

  class Builder:

    def is_prepared(self):
      return prepared

    def download_and_prepare(self, file_format):
      calls.append(('download', file_format))

    def as_data_source(self, split):
      if fail is not None:
        raise fail
      return splits[split]

  def builder(name, data_dir):
    calls.append(('builder', name, data_dir))
    return Builder()

  module = types.ModuleType('tensorflow_datasets')
  module.builder = builder
  module.disable_progress_bar = lambda: None
  return module, calls


def records(labels, offset):
  return [{'image': np.full((2, 2, 1), offset + i, np.uint8), 'label': y}
          for i, y in enumerate(labels)]


class TfdsSourceTest(absltest.TestCase):

  def test_arrays_come_from_the_data_source(self):
    splits = {'train': records([3, 1, 4], 0), 'test': records([1, 5], 10)}
    module, calls = fake_tfds(splits=splits)
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': module}):
      tx, ty, vx, vy = tfds_source.read('mnist', '/data', 'fix it',
                                        image=lambda a: a[..., 0])
    self.assertEqual(calls, [('builder', 'mnist', '/data')])  # no download
    self.assertEqual((tx.shape, tx.dtype), ((3, 2, 2), np.uint8))
    np.testing.assert_array_equal(tx[:, 0, 0], [0, 1, 2])
    np.testing.assert_array_equal(vx[:, 1, 1], [10, 11])
    self.assertEqual(ty.dtype, np.int32)
    np.testing.assert_array_equal(ty, [3, 1, 4])
    np.testing.assert_array_equal(vy, [1, 5])

  def test_unprepared_data_is_downloaded_after_the_network_check(self):
    splits = {'train': records([0], 0), 'test': records([0], 0)}
    module, calls = fake_tfds(prepared=False, splits=splits)
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': module}), \
        mock.patch.object(tfds_source, 'check_network') as check:
      tfds_source.read('cifar100', None, 'fix it')
    check.assert_called_once()
    self.assertEqual(calls[1], ('download', 'array_record'))

  def test_failures_are_one_data_error_each(self):
    module, _ = fake_tfds(fail=RuntimeError('disk quota\nsecond line'))
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': module}):
      with self.assertRaisesRegex(
          DataError, r'^TFDS could not provide mnist \(disk quota\); it '
          r'needs network access on first use, or fix it$'):
        tfds_source.read('mnist', None, 'fix it')
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': None}):
      with self.assertRaisesRegex(
          DataError, r'^tensorflow-datasets is not installed; pip install '
          r'tensorflow-datasets, or fix it$'):
        tfds_source.read('mnist', None, 'fix it')
    module, _ = fake_tfds(prepared=False)
    with mock.patch.dict(sys.modules, {'tensorflow_datasets': module}), \
        mock.patch('socket.create_connection',
                   side_effect=OSError('no route')):
      with self.assertRaisesRegex(
          DataError, r'^TFDS could not provide mnist \(cannot reach '
          r'storage.googleapis.com: no route\)'):
        tfds_source.read('mnist', None, 'fix it')


if __name__ == '__main__':
  absltest.main()
