"""`run.py --dataset=cifar100` gets its own data: with $EMCL_JAX_MIRROR at
a local HTTP server serving cifar-100-python.tar.gz (small, in the official
format), the first run downloads it with progress, checks it, caches it and
trains; the second run does not touch the server; a corrupt archive is one
line and exit 2, and the next run fetches it again (run.py's main, in this
process or as tests/download_driver.py, with one change: the expected MD5 is
the small archive's). What goes wrong is one line:
a mirror too slow (exit 2 within the low-speed window), Ctrl-C (exit 130,
the partial download kept), a bad mirror variable or a cache that cannot be
written (exit 2, naming it)."""

import hashlib
import os
import re
import signal
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import pytest

import fixtures
from emcl_jax.data import download
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

  def command(self, *args):
    # The MLP and one glance: this test is about getting the data; the
    # reduced ResNet's learning on CIFAR-format files is
    # test_learnable_images.py's.
    return [sys.executable, os.path.join(fixtures.ROOT, 'tests',
                                         'download_driver.py'),
            '--dataset=cifar100', '--method=emcl', '--config.data.num_tasks=2',
            '--config.data.samples_per_task=10',
            '--config.method.memory_size=0', '--config.model.name=mlp',
            '--config.method.glances=1', f'--workdir={self.tmp}/runs', *args]

  def env(self, **extra):
    return dict(fixtures.ENV, EMCL_JAX_MIRROR=self.server.base,
                EMCL_JAX_DATA=self.cache,
                EMCL_JAX_TEST_MD5=hashlib.md5(self.data).hexdigest(), **extra)

  def run_py(self, *args):
    """run.py's main in this process, with download_driver.py's one change
    (the small archive's MD5 expected)."""
    record = download.CIFAR100._replace(md5=hashlib.md5(self.data).hexdigest())
    with mock.patch.dict(os.environ, {download.MIRROR_ENV: self.server.base,
                                      'EMCL_JAX_DATA': self.cache}), \
        mock.patch.object(download, 'CIFAR100', record), \
        mock.patch.dict(download.ARCHIVES, {'cifar100': record}):
      return fixtures.call('run', *self.command(*args)[2:])

  def errors(self, stderr):
    """stderr's lines but the progress lines."""
    return [l for l in stderr.splitlines() if not l.startswith(ARCHIVE)]

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

  def test_slow_mirror_is_one_line_and_exit_2_within_the_window(self):
    self.server.pace = (1, 5)  # 1 byte every 5 s
    child = subprocess.Popen(self.command(), stderr=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, text=True,
                             env=self.env(EMCL_JAX_LOW_SPEED_TIME='2'))
    self.addCleanup(child.kill)
    lines = []
    for line in child.stderr:  # the time of the error line, not the exit's
      lines.append(line)
      if line.startswith('error:'):
        said = time.monotonic()
    lines.append(child.stderr.read())
    self.assertEqual(child.wait(timeout=60), 2, lines)
    self.assertLess(said - self.server.times[0], 2 + 2)  # the 2 s window
    stderr = ''.join(lines)
    self.assertRegex(stderr, rf'^{re.escape(ARCHIVE)} 0.0 MB of ')
    (error,) = self.errors(stderr)
    self.assertRegex(error, r'^error: the download of http://127\.0\.0\.1:'
                     rf'\d+/{re.escape(ARCHIVE)} stopped: [\d.]+ bytes/s over the '
                     r'last 2 s \(EMCL_JAX_LOW_SPEED_TIME\), under '
                     r'EMCL_JAX_LOW_SPEED_LIMIT=1024; \S+\.part keeps 0\.0 MB '
                     r'of [\d.]+ MB: run again to resume it, or set '
                     'EMCL_JAX_MIRROR to a faster mirror, or '
                     r'EMCL_JAX_LOW_SPEED_LIMIT lower \(0: no low-speed '
                     r'abort\)$')
    self.assertLen(self.gets(), 1)

  def test_ctrl_c_is_one_line_exit_130_and_the_part_is_kept(self):
    self.server.pace = (1024, 0.05)  # 20 KB/s: ~45 s for the archive
    part = os.path.join(self.cache, download.DOWNLOADS, ARCHIVE + '.part')
    child = subprocess.Popen(fixtures.default_sigint(self.command()),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=self.env())
    self.addCleanup(child.kill)
    deadline = time.monotonic() + 120
    while not (os.path.exists(part) and os.path.getsize(part)):
      self.assertIsNone(child.poll())
      self.assertLess(time.monotonic(), deadline)
      time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)
    self.assertEqual(child.returncode, 130, stderr)
    (error,) = self.errors(stderr)
    self.assertRegex(error, r'^error: the download of http://127\.0\.0\.1:'
                     rf'\d+/{re.escape(ARCHIVE)} was interrupted; '
                     rf'{re.escape(part)} keeps [\d.]+ MB: run again to '
                     'resume it$')
    kept = os.path.getsize(part)
    self.assertGreater(kept, 0)
    # The next fetch resumes it.
    self.server.pace = None
    record = download.Archive('cifar100', f'{self.server.base}/{ARCHIVE}',
                              hashlib.md5(self.data).hexdigest(),
                              'cifar-100-python', 'x')
    with mock.patch.dict(os.environ):
      os.environ.pop(download.MIRROR_ENV, None)
      download.fetch(record, self.cache, progress=lambda d, t: None)
    self.assertEqual(self.server.log[-1][1:], (f'bytes={kept}-', 206))

  def test_bad_mirror_and_unwritable_cache_are_one_line_naming_them(self):
    not_a_folder = os.path.join(self.tmp, 'file')
    with open(not_a_folder, 'w') as f:
      f.write('x')
    for env, args, message in [
        ({'EMCL_JAX_MIRROR': 'notaurl'}, [],
         "error: EMCL_JAX_MIRROR is 'notaurl', not a URL it can use; set it "
         'to the base URL of a mirror'),
        ({'EMCL_JAX_MIRROR': self.server.base},
         [f'--data_dir={not_a_folder}/cache'],
         f'error: cannot write the download cache {not_a_folder}/cache: Not '
         'a directory; free space or allow writing there, or pass another '
         '--data_dir')]:
      with mock.patch.dict(os.environ, {'EMCL_JAX_DATA': self.cache, **env}):
        result = fixtures.call('run', *self.command(*args)[2:])
      self.assertEqual(result.returncode, 2, result.stderr)
      (error,) = result.stderr.splitlines()
      self.assertTrue(error.startswith(message), error)
    self.assertEmpty(self.server.log)


if __name__ == '__main__':
  absltest.main()
