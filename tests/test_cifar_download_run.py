"""`run.py --dataset=cifar100` gets its own data: with $EMCL_JAX_MIRROR at
a local HTTP server serving cifar-100-python.tar.gz (small, in the official
format), the first run downloads it with progress, checks it, caches it and
trains; the second run does not touch the server; a corrupt archive is one
line and exit 2, and the next run fetches it again (tests/download_driver.py:
only the expected MD5 is the small archive's)."""

import hashlib
import os
import subprocess
import sys

from absl.testing import absltest
import pytest

import fixtures
from test_download import Server

pytestmark = pytest.mark.slow  # runs of run.py in processes of their own

ARCHIVE = 'cifar-100-python.tar.gz'


class CifarDownloadRunTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = fixtures.tmp_dir(self)
    # Train 2 images a class, test 1 a class (labels cycle over the 100).
    self.data, _ = fixtures.cifar_archive(n_train=200, n_test=100)
    self.server = Server({f'/{ARCHIVE}': self.data})
    self.addCleanup(self.server.stop)
    self.cache = os.path.join(self.tmp, 'cache')

  def run_py(self, *args):
    # The MLP and one glance: this test is about getting the data; the
    # reduced ResNet's learning on CIFAR-format files is
    # test_learnable_images.py's.
    env = dict(fixtures.ENV, EMCL_JAX_MIRROR=self.server.base,
               EMCL_JAX_DATA=self.cache,
               EMCL_JAX_TEST_MD5=hashlib.md5(self.data).hexdigest())
    return subprocess.run(
        [sys.executable, os.path.join(fixtures.ROOT, 'tests',
                                      'download_driver.py'),
         '--dataset=cifar100', '--method=emcl', '--config.data.num_tasks=2',
         '--config.data.samples_per_task=10', '--config.method.memory_size=0',
         '--config.model.name=mlp', '--config.method.glances=1',
         f'--workdir={self.tmp}/runs', *args],
        capture_output=True, text=True, env=env, timeout=600)

  def gets(self):
    return [entry for entry in self.server.log if entry[2] in (200, 206)]

  def test_download_verify_cache_train_then_no_network(self):
    first = self.run_py()
    self.assertEqual(first.returncode, 0, first.stderr)
    self.assertRegex(first.stdout, r'cifar100 emcl seed=0 ACC=[\d.]+ ')
    self.assertLen(self.gets(), 1)
    # Progress on stderr (not a terminal: the final line at least).
    self.assertRegex(first.stderr, rf'{ARCHIVE} [\d.]+ MB of [\d.]+ MB '
                     r'\(100%\) done')
    folder = os.path.join(self.cache, 'cifar-100-python')
    self.assertCountEqual(os.listdir(folder),
                          ['train', 'test', 'meta', '.complete'])
    # The second run reads the cache; the server is not asked.
    self.server.stop()
    second = self.run_py('--config.output.overwrite=true')
    self.assertEqual(second.returncode, 0, second.stderr)
    self.assertLen(self.gets(), 1)

  def test_corrupt_archive_is_one_line_and_the_next_run_fetches_again(self):
    corrupt = bytearray(self.data)
    corrupt[len(corrupt) // 2] ^= 0xFF
    self.server.files = {f'/{ARCHIVE}': bytes(corrupt)}
    bad = self.run_py()
    self.assertEqual(bad.returncode, 2, bad.stderr)
    errors = [l for l in bad.stderr.splitlines() if not l.startswith(ARCHIVE)]
    self.assertLen(errors, 1, bad.stderr)
    self.assertRegex(errors[0], r'^error: the archive at http://127\.0\.0\.1:'
                     r'\d+/cifar-100-python\.tar\.gz failed its checksum .*'
                     'it was removed, run again to fetch it again$')
    self.assertFalse(os.path.exists(os.path.join(self.cache,
                                                 'cifar-100-python')))
    runs = os.path.join(self.tmp, 'runs')  # no run folder left behind
    self.assertEqual(os.listdir(runs) if os.path.exists(runs) else [], [])
    self.server.files = {f'/{ARCHIVE}': self.data}
    again = self.run_py()
    self.assertEqual(again.returncode, 0, again.stderr)
    self.assertLen(self.gets(), 2)


if __name__ == '__main__':
  absltest.main()
