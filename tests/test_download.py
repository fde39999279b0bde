"""`data.download` against a real HTTP server on 127.0.0.1 (a thread of this
test) serving tiny archives in the official formats: resume, restarts,
checksums, corrupt archives, network errors, the cache and the mirror."""

import contextlib
import hashlib
import http.server
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from unittest import mock

from absl.testing import absltest
import numpy as np

import fixtures
from emcl_jax.data import cifar100
from emcl_jax.data import download
from emcl_jax.data import download_pace
from emcl_jax.data import miniimagenet
from emcl_jax.data import tinyimagenet
from emcl_jax.errors import DataError

CIFAR = 'cifar-100-python.tar.gz'
TINY = 'tiny-imagenet-200.zip'


def _md5(raw: bytes) -> str:
  return hashlib.md5(raw).hexdigest()


def tiny_zip():
  """A tiny tiny-imagenet-200.zip: the folder with a couple of files."""
  buf = io.BytesIO()
  with zipfile.ZipFile(buf, 'w') as z:
    z.writestr('tiny-imagenet-200/wnids.txt', 'n02\nn01\n')
    z.writestr('tiny-imagenet-200/train/n01/images/n01_0.JPEG', b'\xff\xd8')
    z.writestr('tiny-imagenet-200/val/val_annotations.txt',
               'val_0.JPEG\tn01\t0\t0\t63\t63\n')
  return buf.getvalue()


def tar_with(names):
  """A .tar.gz holding an empty file under each of `names`."""
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    for name in names:
      tar.addfile(tarfile.TarInfo(name), io.BytesIO(b''))
  return buf.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
  """GET with Range support; the server's attributes steer it:
  files {path: bytes}, status (an error code to answer), honour_range,
  cuts (absolute byte positions; each request takes the first and stops
  sending there), pace (None, or (n, seconds): the body sent n bytes at a
  time, `seconds` apart, the first at once), log [(path, Range header,
  status sent)], times (time.monotonic() of each request)."""

  def do_GET(self):  # pylint: disable=invalid-name
    srv = self.server
    srv.times.append(time.monotonic())
    asked = self.headers.get('Range')
    data = srv.files.get(self.path)
    if srv.status or data is None:
      code = srv.status or 404
      srv.log.append((self.path, asked, code))
      self.send_error(code)
      return
    start = 0
    m = re.fullmatch(r'bytes=(\d+)-', asked or '')
    if m and srv.honour_range:
      start = int(m.group(1))
      if start >= len(data):
        srv.log.append((self.path, asked, 416))
        self.send_error(416)
        return
    code = 206 if m and srv.honour_range else 200
    srv.log.append((self.path, asked, code))
    self.send_response(code)
    self.send_header('Content-Type', 'application/octet-stream')
    self.send_header('Content-Length', str(len(data) - start))
    if code == 206:
      self.send_header('Content-Range',
                       f'bytes {start}-{len(data) - 1}/{len(data)}')
    self.end_headers()
    end = len(data)
    if srv.cuts:
      end = max(start, min(end, srv.cuts.pop(0)))
    step, seconds = srv.pace or (end - start, 0)
    try:
      for at in range(start, end, max(step, 1)):
        if at > start:
          time.sleep(seconds)
        self.wfile.write(data[at:min(at + step, end)])
        self.wfile.flush()
    except OSError:  # the client left
      pass
    self.close_connection = True

  def log_message(self, *args):  # pylint: disable=arguments-differ
    pass


class Server:
  """A threaded HTTP server on 127.0.0.1 serving `files`."""

  def __init__(self, files):
    self.httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
    self.httpd.daemon_threads = True
    self.httpd.files = dict(files)
    self.httpd.status = None
    self.httpd.honour_range = True
    self.httpd.cuts = []
    self.httpd.pace = None
    self.httpd.log = []
    self.httpd.times = []
    self.base = f'http://127.0.0.1:{self.httpd.server_address[1]}'
    self.thread = threading.Thread(target=self.httpd.serve_forever,
                                   kwargs={'poll_interval': 0.05},
                                   daemon=True)
    self.thread.start()
    self.running = True

  STEERING = ('files', 'status', 'honour_range', 'cuts', 'pace', 'log',
              'times')

  def __getattr__(self, name):
    return getattr(self.httpd, name)

  def __setattr__(self, name, value):
    if name in self.STEERING:
      setattr(self.httpd, name, value)
    else:
      super().__setattr__(name, value)

  def stop(self):
    if self.running:
      self.httpd.shutdown()
      self.httpd.server_close()
      self.thread.join(5)
      self.running = False


def closed_port():
  """A port on 127.0.0.1 with nothing listening."""
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


class FetchTestBase(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.cache = fixtures.tmp_dir(self)
    self.raw, self.files = fixtures.cifar_archive(n_train=12, n_test=6)
    self.server = Server({'/files/' + CIFAR: self.raw})
    self.addCleanup(self.server.stop)
    patcher = mock.patch.dict(os.environ)
    patcher.start()
    self.addCleanup(patcher.stop)
    os.environ.pop(download.MIRROR_ENV, None)
    os.environ.pop(download.DATA_ENV, None)

  def record(self, md5=None, filename=CIFAR, folder='cifar-100-python',
             base=None):
    """A registry entry for the tiny archive on the test server."""
    return download.Archive(
        name='test', url=f'{base or self.server.base}/files/{filename}',
        md5=md5 or _md5(self.raw), folder=folder,
        homepage='https://example.org/manual')

  def fetch(self, record, **kwargs):
    kwargs.setdefault('progress', lambda done, total: None)
    return download.fetch(record, self.cache, **kwargs)

  def assert_one_line_error(self, record, *patterns, **kwargs):
    with self.assertRaises(DataError) as cm:
      self.fetch(record, **kwargs)
    message = str(cm.exception)
    self.assertNotIn('\n', message)
    for pattern in patterns:
      self.assertIn(pattern, message)
    return message

  def downloaded(self, filename=CIFAR):
    path = os.path.join(self.cache, download.DOWNLOADS, filename)
    with open(path, 'rb') as f:
      return f.read()

  def assert_no_leftovers(self):
    """No .part, no lock file, no temporary extraction folder."""
    names = os.listdir(self.cache)
    self.assertEmpty([n for n in names if n.startswith('.')
                      and n != download.DOWNLOADS], names)
    downloads = os.path.join(self.cache, download.DOWNLOADS)
    if os.path.isdir(downloads):
      self.assertEmpty([n for n in os.listdir(downloads)
                        if n.endswith(('.part', '.lock'))])


class FetchTest(FetchTestBase):

  def test_fetch_extracts_a_folder_the_cifar_reader_reads(self):
    folder = self.fetch(self.record())
    self.assertEqual(folder, os.path.join(self.cache, 'cifar-100-python'))
    self.assertEqual(sorted(os.listdir(folder)),
                     ['.complete', 'meta', 'test', 'train'])
    self.assertEqual(self.downloaded(), self.raw)
    self.assert_no_leftovers()
    for data_dir in (folder, self.cache):
      split = cifar100.read_dir(data_dir)
      np.testing.assert_array_equal(split.train_y,
                                    self.files['train'][b'fine_labels'])
      np.testing.assert_array_equal(split.test_y,
                                    self.files['test'][b'fine_labels'])
      # Image 0's red plane is the first 1024 bytes of its row.
      np.testing.assert_array_equal(
          split.train_x[0, :, :, 0].ravel(),
          self.files['train'][b'data'][0, :1024])
      self.assertEqual(split.train_x.shape, (12, 32, 32, 3))

  def test_progress_is_called_and_reaches_the_total(self):
    calls = []
    with mock.patch.object(download, 'CHUNK', 1024):
      self.fetch(self.record(), progress=lambda d, t: calls.append((d, t)))
    n = len(self.raw)
    self.assertGreater(len(calls), n // 1024)
    self.assertEqual(calls[0], (0, n))
    self.assertEqual(calls[-1], (n, n))
    done = [d for d, _ in calls]
    self.assertEqual(done, sorted(done))
    self.assertEqual({t for _, t in calls}, {n})

  def test_checksum_mismatch_removes_the_file_and_next_fetch_succeeds(self):
    good = self.record()
    self.server.files['/files/' + CIFAR] = b'not the archive' * 100
    message = self.assert_one_line_error(
        good, good.url, 'failed its checksum', 'removed', 'run again')
    self.assertIn(good.md5, message)
    self.assertFalse(os.path.exists(os.path.join(self.cache,
                                                 download.DOWNLOADS)))
    self.assertFalse(os.path.exists(os.path.join(self.cache,
                                                 'cifar-100-python')))
    self.server.files['/files/' + CIFAR] = self.raw
    self.fetch(good)
    self.assertLen(self.server.log, 2)
    self.assertEqual(self.downloaded(), self.raw)
    self.assertIsNone(self.server.log[1][1])  # no Range: nothing was kept

  def test_truncated_transfer_resumes_with_range(self):
    half = len(self.raw) // 2
    self.server.cuts = [half]
    calls = []
    self.fetch(self.record(), progress=lambda d, t: calls.append((d, t)))
    self.assertEqual(self.server.log, [
        ('/files/' + CIFAR, None, 200),
        ('/files/' + CIFAR, f'bytes={half}-', 206)])
    self.assertEqual(self.downloaded(), self.raw)
    self.assertIn((half, len(self.raw)), calls)
    self.assertEqual(calls[-1], (len(self.raw), len(self.raw)))
    self.assert_no_leftovers()

  def test_download_that_keeps_stopping_is_resumed_by_the_next_run(self):
    half = len(self.raw) // 2
    self.server.cuts = [half] * 5
    record = self.record()
    self.assert_one_line_error(record, record.url, 'stopped at',
                               'run again to resume')
    part = os.path.join(self.cache, download.DOWNLOADS, CIFAR + '.part')
    self.assertEqual(os.path.getsize(part), half)
    self.server.cuts = []
    self.server.log.clear()
    self.fetch(record)
    self.assertEqual(self.server.log,
                     [('/files/' + CIFAR, f'bytes={half}-', 206)])
    self.assertEqual(self.downloaded(), self.raw)

  def test_server_ignoring_range_restarts_from_zero(self):
    self.server.honour_range = False
    half = len(self.raw) // 2
    self.server.cuts = [half]
    calls = []
    self.fetch(self.record(), progress=lambda d, t: calls.append((d, t)))
    self.assertEqual(self.server.log, [
        ('/files/' + CIFAR, None, 200),
        ('/files/' + CIFAR, f'bytes={half}-', 200)])
    self.assertEqual(self.downloaded(), self.raw)
    self.assertEqual(calls.count((0, len(self.raw))), 2)

  def test_complete_part_answered_416_restarts(self):
    part = os.path.join(self.cache, download.DOWNLOADS, CIFAR + '.part')
    os.makedirs(os.path.dirname(part))
    with open(part, 'wb') as f:
      f.write(self.raw + b'extra')
    self.fetch(self.record())
    self.assertEqual([c for _, _, c in self.server.log], [416, 200])
    self.assertEqual(self.downloaded(), self.raw)

  def test_server_gone_fails_fast_naming_the_url(self):
    record = self.record(base=f'http://127.0.0.1:{closed_port()}')
    start = time.monotonic()
    message = self.assert_one_line_error(
        record, f'cannot download {record.url}', record.homepage,
        '--data_dir=', download.MIRROR_ENV)
    self.assertLess(time.monotonic() - start, 15)
    self.assertIn('refused', message.lower())

  def test_http_error_names_the_url(self):
    self.server.status = 500
    record = self.record()
    self.assert_one_line_error(record, f'cannot download {record.url}',
                               'HTTP 500', record.homepage)
    self.server.status = None
    self.assert_one_line_error(self.record(filename='missing.tar.gz'),
                               'HTTP 404')

  def test_silent_server_times_out(self):
    with socket.socket() as listener:  # accepts connections, never answers
      listener.bind(('127.0.0.1', 0))
      listener.listen(4)
      record = self.record(base=f'http://127.0.0.1:{listener.getsockname()[1]}')
      start = time.monotonic()
      with mock.patch.object(download_pace, 'TIMEOUT_S', 0.5):
        self.assert_one_line_error(record, record.url, 'no answer within 0.5 s')
      self.assertLess(time.monotonic() - start, 5)

  def test_cache_hit_needs_no_server(self):
    record = self.record()
    folder = self.fetch(record)
    self.server.stop()
    os.remove(os.path.join(self.cache, download.DOWNLOADS, CIFAR))
    calls = []
    self.assertEqual(
        self.fetch(record, progress=lambda d, t: calls.append(d)), folder)
    self.assertEmpty(calls)
    self.assertLen(self.server.log, 1)

  def test_cached_archive_is_extracted_without_the_network(self):
    record = self.record()
    os.makedirs(os.path.join(self.cache, download.DOWNLOADS))
    with open(os.path.join(self.cache, download.DOWNLOADS, CIFAR), 'wb') as f:
      f.write(self.raw)
    self.server.stop()
    folder = self.fetch(record)
    self.assertEqual(len(cifar100.read_dir(folder).train_y), 12)
    self.assertEmpty(self.server.log)

  def test_cached_archive_with_a_wrong_checksum_is_fetched_again(self):
    os.makedirs(os.path.join(self.cache, download.DOWNLOADS))
    with open(os.path.join(self.cache, download.DOWNLOADS, CIFAR), 'wb') as f:
      f.write(self.raw[:100])
    self.fetch(self.record())
    self.assertLen(self.server.log, 1)
    self.assertEqual(self.downloaded(), self.raw)

  def test_unfinished_folder_is_not_taken_for_data(self):
    folder = os.path.join(self.cache, 'cifar-100-python')
    os.makedirs(folder)
    with open(os.path.join(folder, 'train'), 'wb') as f:
      f.write(b'half written')
    self.fetch(self.record())
    self.assertLen(self.server.log, 1)
    self.assertEqual(len(cifar100.read_dir(folder).train_y), 12)
    # A marker for another archive (another MD5) does not count either:
    # the cached archive is extracted again.
    with open(os.path.join(folder, '.complete'), 'w') as f:
      f.write('0' * 32)
    with open(os.path.join(folder, 'train'), 'wb') as f:
      f.write(b'from another archive')
    self.fetch(self.record())
    self.assertLen(self.server.log, 1)
    self.assertEqual(len(cifar100.read_dir(folder).train_y), 12)
    self.assertTrue(download.is_complete(folder, self.record()))

  def test_corrupt_archive_is_removed_and_fetched_again(self):
    garbage = b'\x1f\x8b garbage, not a gzip stream' * 50
    truncated = self.raw[:len(self.raw) // 2]
    for bad in (garbage, truncated):
      self.server.files['/files/' + CIFAR] = bad
      self.server.log.clear()
      record = self.record(md5=_md5(bad))
      for _ in range(2):  # each run fetches the archive again
        self.assert_one_line_error(record, record.url, 'truncated or corrupt',
                                   'removed', 'run again')
        self.assertFalse(os.path.exists(os.path.join(self.cache,
                                                     download.DOWNLOADS)))
        folder = os.path.join(self.cache, 'cifar-100-python')
        self.assertFalse(download.is_complete(folder, record))
        self.assertFalse(os.path.exists(folder))
        self.assert_no_leftovers()
      self.assertLen(self.server.log, 2)
    self.server.files['/files/' + CIFAR] = self.raw
    self.fetch(self.record())

  def test_corrupt_zip(self):
    raw = tiny_zip()
    self.server.files['/files/' + TINY] = raw[:len(raw) - 30]
    record = self.record(md5=_md5(raw[:len(raw) - 30]), filename=TINY,
                         folder='tiny-imagenet-200')
    self.assert_one_line_error(record, 'truncated or corrupt', 'removed')
    self.assertFalse(os.path.exists(os.path.join(self.cache,
                                                 download.DOWNLOADS)))

  def test_archive_without_its_folder(self):
    raw = tar_with(['other/train'])
    self.server.files['/files/' + CIFAR] = raw
    self.assert_one_line_error(self.record(md5=_md5(raw)),
                               'has no cifar-100-python/ folder', 'removed')
    self.assert_no_leftovers()

  def test_unsafe_members_are_refused(self):
    outside = os.path.join(os.path.dirname(self.cache), 'evil_from_test')
    for names in (['cifar-100-python/train', '../evil_from_test'],
                  ['/tmp/evil_from_test'],
                  ['cifar-100-python/../../evil_from_test']):
      raw = tar_with(names)
      self.server.files['/files/' + CIFAR] = raw
      self.assert_one_line_error(self.record(md5=_md5(raw)),
                                 'a path outside its folder')
      self.assertFalse(os.path.exists(outside))
      self.assertFalse(os.path.exists('/tmp/evil_from_test'))
      self.assert_no_leftovers()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w:gz') as tar:
      link = tarfile.TarInfo('cifar-100-python/train')
      link.type, link.linkname = tarfile.SYMTYPE, '/etc/passwd'
      tar.addfile(link)
    raw = buf.getvalue()
    self.server.files['/files/' + CIFAR] = raw
    self.assert_one_line_error(self.record(md5=_md5(raw)), 'a link or device')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as z:
      z.writestr('../evil_from_test', b'x')
    raw = buf.getvalue()
    self.server.files['/files/' + TINY] = raw
    self.assert_one_line_error(
        self.record(md5=_md5(raw), filename=TINY, folder='tiny-imagenet-200'),
        'a path outside its folder')
    self.assertFalse(os.path.exists(outside))

  def test_tinyimagenet_zip(self):
    raw = tiny_zip()
    self.server.files['/files/' + TINY] = raw
    folder = self.fetch(self.record(md5=_md5(raw), filename=TINY,
                                    folder='tiny-imagenet-200'))
    self.assertEqual(folder, os.path.join(self.cache, 'tiny-imagenet-200'))
    self.assertEqual(tinyimagenet.find_folder(self.cache), folder)
    self.assertEqual(tinyimagenet.read_wnids(folder), ['n01', 'n02'])

  def test_mirror_replaces_the_base_url(self):
    self.server.files['/mirror/' + CIFAR] = self.raw
    dead = f'http://127.0.0.1:{closed_port()}'
    record = self.record(base=dead)
    os.environ[download.MIRROR_ENV] = self.server.base + '/mirror/'
    self.assertEqual(download.url_of(record),
                     f'{self.server.base}/mirror/{CIFAR}')
    self.fetch(record)
    self.assertEqual(self.server.log, [('/mirror/' + CIFAR, None, 200)])
    # A bad download from the mirror names the mirror's URL.
    shutil.rmtree(self.cache)
    self.server.files['/mirror/' + CIFAR] = b'junk'
    self.assert_one_line_error(record, f'{self.server.base}/mirror/{CIFAR}',
                               'failed its checksum')

  def test_file_url_mirror(self):
    mirror = fixtures.tmp_dir(self)
    with open(os.path.join(mirror, CIFAR), 'wb') as f:
      f.write(self.raw)
    os.environ[download.MIRROR_ENV] = 'file://' + mirror
    calls = []
    self.fetch(self.record(), progress=lambda d, t: calls.append((d, t)))
    self.assertEqual(self.downloaded(), self.raw)
    self.assertEqual(calls[-1], (len(self.raw), len(self.raw)))

  def test_default_progress_writes_to_stderr_only(self):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      download.fetch(self.record(), self.cache)
    self.assertEqual(out.getvalue(), '')
    self.assertRegex(err.getvalue(), rf'^{re.escape(CIFAR)} 0.0 MB of .*\n'
                     rf'{re.escape(CIFAR)} .* done\n$')

  def test_unknown_name(self):
    with self.assertRaisesRegex(DataError, "no archive named 'cifar10'.*"
                                'cifar100, tinyimagenet'):
      download.fetch('cifar10', self.cache)


class FaultTest(FetchTestBase):
  """Downloads past the happy path: a slow mirror, a deadline, bad
  settings, a cache that cannot be written, two processes at once, and
  cache folders a data reader must not take for data."""

  def test_slow_mirror_stops_within_the_low_speed_window(self):
    # 1 byte every 5 s; the speed over a 1 s window is under 1024 bytes/s.
    self.server.pace = (1, 5)
    record = self.record()
    calls = []
    start = time.monotonic()
    message = self.assert_one_line_error(
        record, f'the download of {record.url} stopped: ',
        f'bytes/s over the last 1 s ({download_pace.LOW_SPEED_TIME_ENV}), under '
        f'{download_pace.LOW_SPEED_LIMIT_ENV}=1024', 'run again to resume it',
        download.MIRROR_ENV, low_speed_time=1,
        progress=lambda d, t: calls.append(d))
    self.assertLess(time.monotonic() - start, 3, message)
    self.assertIn(1, calls)  # the first byte is shown when it arrives
    part = os.path.join(self.cache, download.DOWNLOADS, CIFAR + '.part')
    self.assertEqual(os.path.getsize(part), 1)  # kept: the next run resumes
    self.server.pace = None
    self.fetch(record)
    self.assertEqual(self.server.log[-1][1:], ('bytes=1-', 206))
    self.assertEqual(self.downloaded(), self.raw)

  def test_deadline_over_all_requests(self):
    self.server.pace = (4096, 0.1)  # 40 KB/s: fast enough, never done in 1 s
    record = self.record()
    start = time.monotonic()
    self.assert_one_line_error(
        record, f'the download of {record.url} stopped: it took more than '
        f'{download.TIMEOUT_ENV}=0.5 s', 'run again to resume it',
        f'set {download.TIMEOUT_ENV} higher', timeout=0.5)
    self.assertLess(time.monotonic() - start, 2)
    os.environ[download.TIMEOUT_ENV] = '0.5'  # the variable says the same
    self.assert_one_line_error(record, f'{download.TIMEOUT_ENV}=0.5 s')

  def test_settings_are_checked_before_anything_is_written(self):
    cache = os.path.join(self.cache, 'new')
    for variable, value in [(download.TIMEOUT_ENV, 'an hour'),
                            (download.TIMEOUT_ENV, '-1'),
                            (download_pace.LOW_SPEED_LIMIT_ENV, 'nan'),
                            (download_pace.LOW_SPEED_TIME_ENV, '0'),
                            (download_pace.LOW_SPEED_TIME_ENV, ' ')]:
      with mock.patch.dict(os.environ, {variable: value}):
        with self.assertRaises(DataError) as cm:
          download.fetch(self.record(), cache)
      self.assertRegex(str(cm.exception), rf'^{variable}={value!r} is not a '
                       r'number of .*; set it to a number such as \d+, or '
                       'unset it$')
    with self.assertRaisesRegex(DataError, r'^low_speed_time=True is not a '
                                'number of seconds > 0; pass a number such '
                                'as 30$'):
      download.fetch(self.record(), cache, low_speed_time=True)
    self.assertEqual(download_pace.download_limits(timeout='0'),
                     download_pace.Limits(0.0, 1024.0, 30.0))
    self.assertFalse(os.path.exists(cache))
    self.assertEmpty(self.server.log)

  def test_bad_mirror_variable_names_it(self):
    cache = os.path.join(self.cache, 'new')
    for value in ('notaurl', '', '   ', 'http://', 'ftp://host/x',
                  'http://host:port/x', 'file://'):
      os.environ[download.MIRROR_ENV] = value
      with self.assertRaises(DataError) as cm:
        download.fetch(self.record(), cache)
      message = str(cm.exception)
      self.assertRegex(message, rf'^{download.MIRROR_ENV} is ')
      self.assertIn('http://HOST/PATH', message)
      self.assertIn('blank' if not value.strip() else repr(value), message)
      self.assertNotIn('\n', message)
    self.assertFalse(os.path.exists(cache))
    for value, base in (('file:///srv/mirror/', 'file:///srv/mirror'),
                        (' https://m.example:8080/d ', 'https://m.example:8080/d')):
      self.assertEqual(download.mirror_base(value), base)

  def test_unwritable_cache_is_named(self):
    # The cache's folder is a file, and a disk that is full (/dev/full
    # stands in for the .part file): both name the cache folder, not
    # --workdir.
    not_a_folder = os.path.join(self.cache, 'file')
    with open(not_a_folder, 'w') as f:
      f.write('x')
    cache = os.path.join(not_a_folder, 'cache')
    with self.assertRaises(DataError) as cm:
      download.fetch(self.record(), cache, progress=lambda d, t: None)
    self.assertRegex(str(cm.exception), rf'^cannot write the download cache '
                     rf'{re.escape(cache)}: Not a directory; free space or '
                     'allow writing there, or pass another --data_dir$')
    self.assertEmpty(self.server.log)
    if os.path.exists('/dev/full'):
      downloads = os.path.join(self.cache, download.DOWNLOADS)
      os.makedirs(downloads)
      os.symlink('/dev/full', os.path.join(downloads, CIFAR + '.part'))
      with mock.patch.dict(os.environ, {download.DATA_ENV: self.cache}):
        with self.assertRaises(DataError) as cm:
          download.fetch(self.record(), progress=lambda d, t: None)
      self.assertEqual(str(cm.exception), (
          f'cannot write the download cache {self.cache}: No space left on '
          f'device; free space or allow writing there, or set '
          f'{download.DATA_ENV} (or pass --data_dir) to another folder'))
    if os.geteuid() != 0:  # root writes anyway
      os.chmod(self.cache, 0o555)
      self.addCleanup(os.chmod, self.cache, 0o755)
      self.assert_one_line_error(self.record(), 'cannot write the download '
                                 f'cache {self.cache}: Permission denied')

  def test_two_processes_one_download(self):
    # Two processes fetch into one cache from a slow mirror (~3 s): one
    # downloads, the other waits (saying so), then takes the finished
    # folder. The server sees one request.
    self.server.pace = (2048, 0.1)
    record = self.record()
    code = ('import sys; from emcl_jax.data import download; '
            "a = download.Archive('test', sys.argv[1], sys.argv[2], "
            "'cifar-100-python', 'x'); "
            'print(download.fetch(a, sys.argv[3], progress=lambda d, t: '
            'None))')
    procs = [subprocess.Popen(
        [sys.executable, '-c', code, record.url, record.md5, self.cache],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=fixtures.ENV) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
      self.assertEqual(p.returncode, 0, err)
    folder = os.path.join(self.cache, 'cifar-100-python')
    self.assertEqual([out.strip() for out, _ in outs], [folder, folder])
    self.assertEqual([entry[2] for entry in self.server.log], [200])
    waits = [err for _, err in outs if err]
    self.assertLen(waits, 1, outs)
    self.assertRegex(waits[0], rf'^{re.escape(CIFAR)}: waiting for process '
                     r'\d+, which is fetching it into \S+\n$')
    self.assertEqual(self.downloaded(), self.raw)
    self.assertEqual(len(cifar100.read_dir(folder).train_y), 12)
    self.assert_no_leftovers()

  def test_wait_for_another_process_is_bounded(self):
    # A second open file holds the lock (flock: as another process would);
    # the fetch says it waits, then gives up after its timeout.
    lock = os.path.join(self.cache, download.DOWNLOADS, CIFAR + '.lock')
    err = io.StringIO()
    start = time.monotonic()
    with download.entry_lock(lock, CIFAR, 0), \
        contextlib.redirect_stderr(err):
      self.assert_one_line_error(
          self.record(), f'process {os.getpid()} has been fetching {CIFAR} '
          f'into {os.path.dirname(lock)} for more than 0.3 s '
          f'({download.TIMEOUT_ENV}); run again once it has finished',
          timeout=0.3)
    self.assertLess(time.monotonic() - start, 2)
    self.assertEqual(err.getvalue(), f'{CIFAR}: waiting for process '
                     f'{os.getpid()}, which is fetching it into '
                     f'{os.path.dirname(lock)}\n')
    self.assertEmpty(self.server.log)
    self.fetch(self.record())  # released: the lock file was removed
    self.assert_no_leftovers()

  def test_cache_folders_never_look_like_data(self):
    # A failed download leaves nothing in the folder it was given; one that
    # stopped keeps its .part in a dot-folder, which a reader of class
    # folders (miniImageNet's) skips.
    data_dir = os.path.join(self.cache, 'data')
    self.server.status = 500
    self.assert_one_line_error(self.record(), 'HTTP 500')  # in self.cache
    with self.assertRaises(DataError):
      download.fetch(self.record(), data_dir, progress=lambda d, t: None)
    self.assertFalse(os.path.exists(data_dir))
    self.assertEqual(os.listdir(self.cache), [])
    self.server.status = None
    self.server.cuts = [100] * 5
    with self.assertRaisesRegex(DataError, 'stopped at'):
      download.fetch(self.record(), data_dir, progress=lambda d, t: None)
    self.assertEqual(os.listdir(data_dir), [download.DOWNLOADS])
    self.assertEqual(miniimagenet.class_folders(data_dir), {})
    with self.assertRaisesRegex(DataError, '^no miniImageNet in'):
      miniimagenet.read_dir(data_dir)

  def test_an_old_cache_folder_is_moved(self):
    # Earlier versions kept the archive in downloads/: it is used (no
    # network) and moved, and the empty downloads/ removed.
    old = os.path.join(self.cache, download.OLD_DOWNLOADS)
    os.makedirs(old)
    with open(os.path.join(old, CIFAR), 'wb') as f:
      f.write(self.raw)
    self.server.stop()
    self.fetch(self.record())
    self.assertEqual(sorted(os.listdir(self.cache)),
                     [download.DOWNLOADS, 'cifar-100-python'])
    self.assertEqual(self.downloaded(), self.raw)


class PaceTest(absltest.TestCase):

  def test_low_speed_needs_a_whole_window_under_the_limit(self):
    now = [0.0]
    pace = download_pace.Pace(download_pace.Limits(0, 1000, 10), clock=lambda: now[0])
    for step in range(1, 301):  # 2000 bytes/s for 30 s, in 0.1 s reads
      now[0] = step / 10
      pace.add(200)
      self.assertIsNone(pace.due(), now[0])
    # Then 100 bytes/s: the 10 s average falls under 1000 bytes/s after
    # 1000 / 1900 of the window (1000 bytes a second fewer than needed).
    stopped = None
    for step in range(301, 500):
      now[0] = step / 10
      pace.add(10)
      if pace.due():
        stopped = now[0] - 30
        break
    self.assertAlmostEqual(stopped, 5.3, delta=0.15)
    self.assertRegex(pace.due()[0], r'^\d+\.\d bytes/s over the last 10 s')

  def test_deadline_and_waits(self):
    now = [0.0]
    pace = download_pace.Pace(download_pace.Limits(60, 0, 30), clock=lambda: now[0])
    self.assertEqual(pace.wait_s(), download_pace.TIMEOUT_S)  # no low-speed abort
    now[0] = 55
    self.assertEqual(pace.wait_s(), 5)
    self.assertIsNone(pace.due())
    now[0] = 60
    self.assertIn('took more than', pace.due()[0])
    pace = download_pace.Pace(download_pace.Limits(0, 1, 2), clock=lambda: now[0])
    self.assertEqual(pace.wait_s(), 2)  # the window is nearer than 10 s


class CacheDirTest(absltest.TestCase):

  def test_explicit_then_environment_then_home(self):
    home = fixtures.tmp_dir(self)
    with mock.patch.dict(os.environ, {'HOME': home,
                                      download.DATA_ENV: '/from/env'}):
      self.assertEqual(download.cache_dir('/explicit'), '/explicit')
      self.assertEqual(download.cache_dir(), '/from/env')
      os.environ[download.DATA_ENV] = '~/data'
      self.assertEqual(download.cache_dir(), os.path.join(home, 'data'))
      for unset in (None, ''):
        if unset is None:
          del os.environ[download.DATA_ENV]
        else:
          os.environ[download.DATA_ENV] = unset
        self.assertEqual(download.cache_dir(),
                         os.path.join(home, '.cache', 'emcl_jax'))

  def test_fetch_uses_the_environment(self):
    cache = fixtures.tmp_dir(self)
    raw, _ = fixtures.cifar_archive(n_train=12, n_test=6)
    server = Server({'/files/' + CIFAR: raw})
    self.addCleanup(server.stop)
    record = download.Archive('test', f'{server.base}/files/{CIFAR}',
                              _md5(raw), 'cifar-100-python', 'x')
    with mock.patch.dict(os.environ, {download.DATA_ENV: cache}):
      os.environ.pop(download.MIRROR_ENV, None)
      folder = download.fetch(record, progress=lambda d, t: None)
    self.assertEqual(folder, os.path.join(cache, 'cifar-100-python'))


class RegistryTest(absltest.TestCase):

  def test_entries_match_the_readers(self):
    self.assertEqual(set(download.ARCHIVES), {'cifar100', 'tinyimagenet'})
    for archive in download.ARCHIVES.values():
      self.assertRegex(archive.md5, r'^[0-9a-f]{32}$')
      self.assertTrue(archive.url.endswith('/' + archive.filename))
    self.assertEqual(download.CIFAR100.filename, cifar100.ARCHIVE)
    self.assertEqual(download.CIFAR100.folder, cifar100.FOLDER)
    self.assertEqual(download.CIFAR100.md5, 'eb9058c3a382ffc7106e4002c42a8d85')
    self.assertEqual(download.TINYIMAGENET.url, tinyimagenet.URL)
    self.assertEqual(download.TINYIMAGENET.folder, tinyimagenet.FOLDER)
    self.assertEqual(download.TINYIMAGENET.md5,
                     '90528d7ca1a48142e341f4ef8d21d0de')

  def test_url_of_without_mirror(self):
    with mock.patch.dict(os.environ):
      os.environ.pop(download.MIRROR_ENV, None)
      self.assertEqual(download.url_of(download.CIFAR100),
                       download.CIFAR100.url)
      os.environ[download.MIRROR_ENV] = 'https://mirror.example/data//'
      self.assertEqual(download.url_of(download.TINYIMAGENET),
                       'https://mirror.example/data/tiny-imagenet-200.zip')

  def test_safe_member(self):
    for name in ('a/b', 'cifar-100-python/train', 'a..b/c'):
      self.assertTrue(download.safe_member(name), name)
    for name in ('/etc/passwd', '../x', 'a/../../x', 'a\\..\\x', 'C:/x',
                 '\\x'):
      self.assertFalse(download.safe_member(name), name)

  def test_md5sum_matches_hashlib(self):
    path = os.path.join(fixtures.tmp_dir(self), 'f')
    raw = os.urandom(3 * download.CHUNK + 7)
    with open(path, 'wb') as f:
      f.write(raw)
    self.assertEqual(download.md5sum(path), _md5(raw))


class ReporterTest(absltest.TestCase):

  def test_plain_lines_at_once_every_ten_seconds_and_a_final_line(self):
    now = [0.0]
    stream = io.StringIO()
    report = download.Reporter('x.tar.gz', stream, clock=lambda: now[0],
                               tty=False)
    mb = 2**20
    for second in range(26):
      now[0] = float(second)
      report(second * mb, 100 * mb)
    report(100 * mb, 100 * mb)
    self.assertEqual(stream.getvalue().splitlines(), [
        'x.tar.gz 0.0 MB of 100.0 MB (0%)',  # the first call: at once
        'x.tar.gz 10.0 MB of 100.0 MB (10%)',
        'x.tar.gz 20.0 MB of 100.0 MB (20%)',
        'x.tar.gz 100.0 MB of 100.0 MB (100%) done'])

  def test_unknown_total(self):
    stream = io.StringIO()
    report = download.Reporter('f', stream, every_seconds=0, tty=False)
    report(0, None)
    report(2**20, None)
    self.assertEqual(stream.getvalue(), 'f 0.0 MB\nf 1.0 MB\n')

  def test_bar_on_a_terminal(self):
    stream = io.StringIO()
    report = download.Reporter('x.zip', stream, tty=True)
    for done in (0, 1000, 3000, 0, 2000, 5000):  # restarted at 3000
      report(done, 5000)
    self.assertIn('x.zip', stream.getvalue())
    self.assertIn('100%', stream.getvalue())
    self.assertIsNone(report._bar)  # closed when done
    report(10, None)
    self.assertEqual(report._bar.n, 10)
    report(20, 20)  # the size known at the end
    self.assertIsNone(report._bar)


class ImportTest(absltest.TestCase):

  def test_no_heavy_module_loaded(self):
    code = ('import emcl_jax, emcl_jax.data.download, sys; '
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('PIL', 'tensorflow', 'tensorflow_datasets', 'tqdm')))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True,
                         env=fixtures.ENV)
    self.assertEqual(out.stdout.strip(), '[]')


if __name__ == '__main__':
  absltest.main()
