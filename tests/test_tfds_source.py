"""The TFDS source against the real tensorflow_datasets (and TensorFlow,
which prepares the data); only the network is simulated.

The official archives' URLs are served, in the official formats (the binary
CIFAR-100 records TFDS's `cifar100` builder reads, MNIST's gzipped IDX
files), by an HTTP server on 127.0.0.1: TFDS's lowest transport function
(`downloader._open_url`) gets the URL rewritten to that server, and the
network probe (`socket.create_connection` to the dataset's host) connects
to it. The small files' checksums are registered in the builders' own
checksum registry (`url_infos`), so TFDS still verifies what it downloads.
Each image encodes its label (and its index), so image-label pairs can be
checked after TFDS has shuffled and PNG-encoded them.

`TensorflowTfdsTest` needs TensorFlow (`pip install -e '.[tfds]'`): it is
skipped when TensorFlow is not installed, unless EMCL_JAX_REQUIRE_TFDS is
set (CI's TFDS tier), when it fails instead. `NoTensorflowTest` hides
TensorFlow from the import system, as if it were not installed, and runs
everywhere.
"""

import contextlib
import gzip
import hashlib
import http.server
import importlib
import importlib.machinery
import importlib.util
import inspect
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.core.download import checksums
from tensorflow_datasets.core.download import downloader

import fixtures
from emcl_jax.data import cifar100
from emcl_jax.data import mnist
from emcl_jax.data import tfds_source
from emcl_jax.errors import DataError

CIFAR_URL = 'https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz'
MNIST_URL = 'https://storage.googleapis.com/cvdf-datasets/mnist/'
MNIST_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
               't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz')
REQUIRE = bool(os.environ.get('EMCL_JAX_REQUIRE_TFDS'))
HAS_TENSORFLOW = importlib.util.find_spec('tensorflow') is not None


class NoTensorflow:
  """Python's path finder, finding no `tensorflow`: TensorFlow cannot be
  imported and importlib.util.find_spec('tensorflow') is None, as when it is
  not installed. (`sys.modules['tensorflow'] = None` would not do: TFDS
  takes a 'tensorflow' key in sys.modules for a loaded TensorFlow.)"""

  def __init__(self, finder):
    self.finder = finder

  def find_spec(self, name, path=None, target=None):
    if name.split('.')[0] == 'tensorflow':
      return None
    return self.finder.find_spec(name, path, target)

  def __getattr__(self, name):  # invalidate_caches, find_distributions
    return getattr(self.finder, name)


def hide_tensorflow(meta_path: list) -> list:
  return [NoTensorflow(f) if f is importlib.machinery.PathFinder else f
          for f in meta_path]


# A child that cannot import TensorFlow nor reach any host.
BLOCK = (inspect.getsource(NoTensorflow) + inspect.getsource(hide_tensorflow)
         + textwrap.dedent("""\
    import importlib.machinery, socket, sys
    sys.meta_path[:] = hide_tensorflow(sys.meta_path)
    def no_network(*args, **kwargs):
      raise OSError('the test blocked the network')
    socket.create_connection = no_network
    """))


@contextlib.contextmanager
def no_tensorflow():
  """This process cannot import TensorFlow (if loaded, it is hidden)."""
  loaded = sys.modules.pop('tensorflow', None)
  meta_path = sys.meta_path[:]
  sys.meta_path[:] = hide_tensorflow(meta_path)
  try:
    yield
  finally:
    sys.meta_path[:] = meta_path
    if loaded is not None:
      sys.modules['tensorflow'] = loaded


# --- the official files, small, each image encoding its label and index ---


def cifar_records(labels: np.ndarray, first_id: int) -> tuple[bytes, dict]:
  """CIFAR-100's binary records (coarse label byte, fine label byte, 3072
  pixel bytes, channel-major) and, per image id, its fine label: channel 0
  is the fine label, channel 1 the id (mod 256, then id // 256 in pixel
  (0, 1)), channel 2 the row (checks the layout)."""
  out, pairs = bytearray(), {}
  for k, fine in enumerate(labels):
    i = first_id + k
    chw = np.zeros((3, 32, 32), np.uint8)
    chw[0] = fine
    chw[1] = i % 256
    chw[1, 0, 1] = i // 256
    chw[2] = np.arange(32, dtype=np.uint8)[:, None]
    out += bytes([fine // 5, fine]) + chw.tobytes()
    pairs[i] = int(fine)
  return bytes(out), pairs


def cifar_archive(per_class_train=2, per_class_test=1) -> tuple[bytes, dict]:
  """cifar-100-binary.tar.gz as TFDS reads it, and its (id, label) pairs."""
  train, pairs = cifar_records(np.repeat(np.arange(100), per_class_train), 0)
  test, test_pairs = cifar_records(np.repeat(np.arange(100), per_class_test),
                                   1000)
  pairs.update(test_pairs)
  files = {
      'train.bin': train, 'test.bin': test,
      'coarse_label_names.txt': ''.join(f'coarse_{c}\n' for c in range(20)
                                        ).encode(),
      'fine_label_names.txt': ''.join(f'fine_{c}\n' for c in range(100)
                                      ).encode(),
  }
  buffer = io.BytesIO()
  with tarfile.open(fileobj=buffer, mode='w:gz') as tar:
    for name, data in files.items():
      info = tarfile.TarInfo(f'cifar-100-binary/{name}')
      info.size = len(data)
      tar.addfile(info, io.BytesIO(data))
  return buffer.getvalue(), pairs


def mnist_images(labels: np.ndarray, first_id: int) -> np.ndarray:
  """[N, 28, 28]: row 0 the label, pixels (1, 0) and (1, 1) the id, rows
  2.. the row index."""
  n = len(labels)
  ids = first_id + np.arange(n)
  x = np.zeros((n, 28, 28), np.uint8)
  x[:, 0] = labels[:, None]
  x[:, 1, 0] = ids // 256
  x[:, 1, 1] = ids % 256
  x[:, 2:] = np.arange(2, 28, dtype=np.uint8)[None, :, None]
  return x


def idx_gz(array: np.ndarray) -> bytes:
  """An IDX file (big-endian header), gzipped."""
  magic = 2051 if array.ndim == 3 else 2049
  header = np.array([magic, *array.shape], '>i4').tobytes()
  return gzip.compress(header + array.tobytes(), compresslevel=1)


# TFDS's MNIST builder reads exactly as many images as two constants of its
# module say (60,000 and 10,000); the tests set them to these sizes
# (`mnist_sizes`), so that preparing takes seconds, not a minute. Every
# other line of the builder runs as shipped.
MNIST_TRAIN, MNIST_TEST = 600, 100


def mnist_files() -> dict[str, bytes]:
  """The four MNIST files, MNIST_TRAIN and MNIST_TEST images: labels cycle
  through 0..9."""
  train_y = (np.arange(MNIST_TRAIN) % 10).astype(np.uint8)
  test_y = ((np.arange(MNIST_TEST) * 7) % 10).astype(np.uint8)
  arrays = (mnist_images(train_y, 0), train_y,
            mnist_images(test_y, 0), test_y)
  return {MNIST_URL + f: idx_gz(a) for f, a in zip(MNIST_FILES, arrays)}


# --- the simulated network ---


class Network:
  """An HTTP server on 127.0.0.1 serving {official URL: bytes}; `installed`
  routes TFDS's transport and the network probe to it."""

  def __init__(self, files: dict[str, bytes]):
    self.files = {self.path(url): data for url, data in files.items()}
    self.requests = []
    network = self

    class Handler(http.server.BaseHTTPRequestHandler):

      def do_GET(self):  # pylint: disable=invalid-name
        network.requests.append(self.path)
        data = network.files.get(self.path)
        if data is None:
          self.send_error(404)
          return
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

      def log_message(self, *args):
        del args

    self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    self.port = self.server.server_address[1]
    threading.Thread(target=self.server.serve_forever, daemon=True).start()

  @staticmethod
  def path(url: str) -> str:
    return '/' + url.split('://', 1)[1]  # '/host/path'

  def local(self, url: str) -> str:
    return f'http://127.0.0.1:{self.port}{self.path(url)}'

  def close(self):
    self.server.shutdown()
    self.server.server_close()

  @contextlib.contextmanager
  def installed(self, reachable=True):
    """TFDS's downloads come from this server; connections to the served
    hosts reach it (or, not `reachable`, fail as offline)."""
    hosts = {p.split('/')[1] for p in self.files}
    open_url, connect = downloader._open_url, socket.create_connection

    def route(address, *args, **kwargs):
      if address[0] in hosts:
        if not reachable:
          raise OSError('[Errno 101] Network is unreachable')
        address = ('127.0.0.1', self.port)
      return connect(address, *args, **kwargs)

    with mock.patch.object(downloader, '_open_url',
                           lambda url, **kw: open_url(self.local(url), **kw)), \
        mock.patch.object(socket, 'create_connection', route):
      yield


@contextlib.contextmanager
def registered(name: str, files: dict[str, bytes]):
  """The small files' size and sha256 in the builder's checksum registry
  (what its checksums.tsv holds for the official files)."""
  infos = {url: checksums.UrlInfo(size=len(data),
                                  checksum=hashlib.sha256(data).hexdigest(),
                                  filename=url.rsplit('/', 1)[1])
           for url, data in files.items()}
  with mock.patch.dict(tfds.builder_cls(name).url_infos, infos):
    yield


@contextlib.contextmanager
def mnist_sizes():
  """TFDS's MNIST builder reading MNIST_TRAIN and MNIST_TEST images."""
  module = inspect.getmodule(tfds.builder_cls('mnist'))
  with mock.patch.object(module, '_TRAIN_EXAMPLES', MNIST_TRAIN), \
      mock.patch.object(module, '_TEST_EXAMPLES', MNIST_TEST):
    yield


def run_child(code: str, *args: str) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, '-c', BLOCK + code, *args], cwd=fixtures.ROOT,
                        env=fixtures.ENV, capture_output=True, text=True, timeout=300,
                        check=False)


def files_under(folder: str) -> list[str]:
  return sorted(os.path.relpath(os.path.join(d, f), folder)
                for d, _, fs in os.walk(folder) for f in fs)


# --- the tests ---


@pytest.mark.slow  # prepares two datasets through TFDS; subprocesses
class TensorflowTfdsTest(absltest.TestCase):
  """Prepares and reads cifar100 and mnist with TFDS and TensorFlow."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    if not HAS_TENSORFLOW:
      why = ("TensorFlow is not installed (pip install -e '.[tfds]'), so "
             'TFDS cannot prepare data')
      if REQUIRE:
        raise AssertionError(f'EMCL_JAX_REQUIRE_TFDS is set but {why}')
      raise absltest.SkipTest(why)
    importlib.import_module('tensorflow')  # installed: it must import
    cls.tmp = tempfile.mkdtemp(prefix='emcl_tfds_')
    archive, cls.cifar_pairs = cifar_archive()
    cls.cifar_files = {CIFAR_URL: archive}
    cls.mnist_files = mnist_files()
    cls.network = Network({**cls.cifar_files, **cls.mnist_files})

  @classmethod
  def tearDownClass(cls):
    if hasattr(cls, 'network'):
      cls.network.close()
      shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def prepare(self, dataset, name, files, data_dir):
    """Loads `dataset` through emcl_jax's TFDS reader from an empty
    `data_dir`: TFDS downloads (through the simulated network) and
    prepares it."""
    self.assertFalse(os.path.exists(data_dir))
    before = len(self.network.requests)
    with self.network.installed(), registered(name, files):
      split = dataset.load('tfds', data_dir)
    served = sorted(self.network.requests[before:])
    self.assertEqual(served, sorted(Network.path(u) for u in files))
    return split

  def test_cifar100_is_prepared_then_read_without_tensorflow(self):
    data_dir = os.path.join(self.tmp, 'cifar')
    split = self.prepare(cifar100, 'cifar100', self.cifar_files, data_dir)
    self.assertEqual(split.source, 'tfds:cifar100')
    self.assertEqual(split.train_x.shape, (200, 32, 32, 3))
    self.assertEqual(split.test_x.shape, (100, 32, 32, 3))
    for x, y in ((split.train_x, split.train_y),
                 (split.test_x, split.test_y)):
      self.assertEqual((x.dtype, y.dtype), (np.uint8, np.int32))
      np.testing.assert_array_equal(x[..., 0], np.broadcast_to(
          y[:, None, None], x.shape[:3]))  # each image with its own label
      np.testing.assert_array_equal(x[..., 2], np.broadcast_to(
          np.arange(32)[None, :, None], x.shape[:3]))  # HWC, rows in place
    ids = np.concatenate([s[:, 0, 0, 1] + 256 * s[:, 0, 1, 1].astype(int)
                          for s in (split.train_x, split.test_x)])
    labels = np.concatenate([split.train_y, split.test_y])
    self.assertEqual(dict(zip(ids.tolist(), labels.tolist())),
                     self.cifar_pairs)  # every image once, with its label
    self.assertLen(set(ids.tolist()), 300)

    # Prepared: read again without TensorFlow, network nor transport.
    child = run_child(textwrap.dedent("""\
        import hashlib, json, sys
        from emcl_jax.data import cifar100
        s = cifar100.load('tfds', sys.argv[1])
        print(json.dumps([hashlib.sha256(a.tobytes()).hexdigest()
                          for a in s[:4]] + [s.source]))
        assert 'tensorflow' not in {m.split('.')[0] for m, v in
                                    sys.modules.items() if v is not None}
        """), data_dir)
    self.assertEqual(child.returncode, 0, child.stderr)
    expected = [hashlib.sha256(a.tobytes()).hexdigest() for a in split[:4]]
    self.assertEqual(json.loads(child.stdout.strip().splitlines()[-1]),
                     expected + ['tfds:cifar100'])

  def test_mnist_is_prepared_then_read_without_tensorflow(self):
    data_dir = os.path.join(self.tmp, 'mnist')
    with mnist_sizes():
      split = self.prepare(mnist, 'mnist', self.mnist_files, data_dir)
    self.assertEqual(split.source, 'tfds:mnist')
    self.assertEqual(split.train_x.shape, (MNIST_TRAIN, 28, 28))
    self.assertEqual(split.test_x.shape, (MNIST_TEST, 28, 28))
    for x, y in ((split.train_x, split.train_y),
                 (split.test_x, split.test_y)):
      self.assertEqual((x.dtype, y.dtype), (np.uint8, np.int32))
      np.testing.assert_array_equal(x[:, 0], np.broadcast_to(
          y[:, None], (len(y), 28)))
      np.testing.assert_array_equal(x[:, 2:], np.broadcast_to(
          np.arange(2, 28)[None, :, None], (len(y), 26, 28)))
    for x, y, train in ((split.train_x, split.train_y, True),
                        (split.test_x, split.test_y, False)):
      ids = x[:, 1, 0].astype(int) * 256 + x[:, 1, 1]
      self.assertEqual(sorted(ids.tolist()), list(range(len(y))))
      expected = ids % 10 if train else (ids * 7) % 10
      np.testing.assert_array_equal(y, expected)  # pairs kept

    child = run_child(textwrap.dedent("""\
        import hashlib, sys
        from emcl_jax.data import mnist
        s = mnist.load('tfds', sys.argv[1])
        print(hashlib.sha256(s.train_x.tobytes() + s.train_y.tobytes()
                             ).hexdigest(), s.source)
        """), data_dir)
    self.assertEqual(child.returncode, 0, child.stderr)
    digest = hashlib.sha256(split.train_x.tobytes() + split.train_y.tobytes()
                            ).hexdigest()
    self.assertEqual(child.stdout.split()[-2:], [digest, 'tfds:mnist'])

  def test_offline_is_one_line_naming_the_network(self):
    data_dir = os.path.join(self.tmp, 'offline')
    before = len(self.network.requests)
    with self.network.installed(reachable=False), \
        registered('cifar100', self.cifar_files):
      with self.assertRaises(DataError) as raised:
        cifar100.load('tfds', data_dir)
    message = str(raised.exception)
    self.assertNotIn('\n', message)
    self.assertRegex(message, r'^TFDS could not download cifar100: cannot '
                     r'reach www\.cs\.toronto\.edu: \[Errno 101\] Network is '
                     r'unreachable; it needs network access on first use, '
                     r'or put the cifar-100-python folder')
    self.assertLen(self.network.requests, before)  # nothing downloaded
    self.assertEqual(files_under(data_dir) if os.path.exists(data_dir)
                     else [], [])

  def test_a_failure_while_preparing_keeps_its_cause(self):
    # A corrupt archive (registered as is, so it passes the checksum):
    # TFDS's extractor fails with a message longer than 200 characters
    # (two temporary paths) whose reason comes last.
    corrupt = {CIFAR_URL: b'not a gzip archive at all'}
    network = Network(corrupt)
    try:
      data_dir = os.path.join(self.tmp, 'corrupt_' + 'x' * 60)
      with network.installed(), registered('cifar100', corrupt):
        with self.assertRaises(DataError) as raised:
          cifar100.load('tfds', data_dir)
    finally:
      network.close()
    message = str(raised.exception)
    self.assertNotIn('\n', message)
    # The cause: its first line whole (both paths, then Python's tarfile's
    # reason), then its further lines, which say why.
    self.assertRegex(message, r'^TFDS could not download and prepare '
                     r'cifar100 in \S+ \(Error while extracting \S+'
                     r'\.tar\.gz to \S+\.tar\.gz: [^|]+ \| ')
    self.assertIn("not a gzip file", message)
    self.assertTrue(message.endswith('); put the cifar-100-python folder '
                                     '(files train, test) or cifar-100-'
                                     'python.tar.gz from https://www.cs.'
                                     'toronto.edu/~kriz/cifar.html in '
                                     'data_dir'))


class NoTensorflowTest(absltest.TestCase):
  """Without TensorFlow, unprepared data stops before any download."""

  def test_read_stops_before_downloading(self):
    with tempfile.TemporaryDirectory() as tmp, \
        no_tensorflow(), \
        mock.patch.object(downloader, '_open_url') as transport, \
        mock.patch.object(socket, 'create_connection') as connect:
      for load, name, fix in (
          (cifar100.load, 'cifar100', 'put the cifar-100-python folder'),
          (mnist.load, 'mnist', 'use data_dir with the IDX files')):
        with self.assertRaises(DataError) as raised:
          load('tfds', os.path.join(tmp, name))
        self.assertRegex(
            str(raised.exception),
            rf"^TFDS needs TensorFlow to prepare {name} \(No module named "
            r"'tensorflow'\): pip install "
            rf"'emcl_jax\[tfds\]' \(tensorflow-cpu\), or {fix}")
        self.assertNotIn('\n', str(raised.exception))
      self.assertEqual(files_under(tmp), [])
      transport.assert_not_called()
      connect.assert_not_called()

  @pytest.mark.slow  # a subprocess
  def test_run_py_says_one_line_and_downloads_nothing(self):
    with tempfile.TemporaryDirectory() as tmp:
      empty, workdir = os.path.join(tmp, 'empty'), os.path.join(tmp, 'work')
      os.mkdir(empty)
      marker = os.path.join(tmp, 'transport_called')
      child = run_child(textwrap.dedent(f"""\
          import runpy, sys
          from tensorflow_datasets.core.download import downloader
          def transport(url, **kwargs):
            open({marker!r}, 'w').write(url)
            raise OSError('the test blocked the transport')
          downloader._open_url = transport
          sys.argv = ['experiments/run.py'] + sys.argv[1:]
          runpy.run_path('experiments/run.py', run_name='__main__')
          """), '--dataset=cifar100', '--config.data.source=tfds',
                        f'--data_dir={empty}', f'--workdir={workdir}')
      self.assertEqual(child.returncode, 2, child.stderr)
      lines = child.stderr.splitlines()
      self.assertLen(lines, 1, child.stderr)
      self.assertRegex(lines[0], r"^error: TFDS needs TensorFlow to prepare "
                       r"cifar100 \(.*tensorflow.*\): pip install "
                       r"'emcl_jax\[tfds\]' \(tensorflow-cpu\), or ")
      self.assertEqual(child.stdout, '')
      self.assertEqual(files_under(empty), [])
      self.assertFalse(os.path.exists(marker))


class ReasonTest(absltest.TestCase):
  """Error messages quote their cause's first line whole."""

  def test_the_first_line_is_never_cut(self):
    long = ('Error while extracting /' + 'd' * 300 + '/x.tar.gz to /'
            + 'e' * 300 + ": No module named 'tensorflow'")
    self.assertEqual(tfds_source.reason(RuntimeError(long)), long)

  def test_further_lines_and_causes_are_cut_after_it(self):
    try:
      try:
        raise ValueError('the root cause')
      except ValueError as e:
        raise RuntimeError('outer\n' + 'z' * 1000) from e
    except RuntimeError as e:
      text = tfds_source.reason(e, more=50)
    self.assertTrue(text.startswith('outer | zzz'))
    self.assertEqual(len(text), len('outer | ') + 50)
    self.assertTrue(text.endswith('...'))
    self.assertEqual(tfds_source.reason(KeyError()), 'KeyError')


if __name__ == '__main__':
  absltest.main()
