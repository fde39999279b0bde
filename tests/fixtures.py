"""Test helpers in one place (`import fixtures`; tests/ is on sys.path):

  ROOT, ENV      the repository root, and the environment of a child
                 process (the package importable, JAX on the CPU)
  tmp_dir        a fresh folder, removed after the test
  study          experiments/{name}.py imported as a module
  call           a launch script (experiments/{name}.py) run in this
                 process: exit code, stdout, stderr
  run_script     the same script in a process of its own, for the tests
                 that need one (a real exit, a kill, several processes)
  write_mnist    MNIST's four IDX files, small and random
  write_cifar    the cifar-100-python folder (train, test, meta pickles)
  cifar_archive  cifar-100-python.tar.gz of the same files, as bytes
  mlp_apply, make_params, make_batch   a tiny tanh MLP, its parameters
                 and a batch for it
"""

import contextlib
import importlib
import importlib.util
import io
import os
import pickle
import shutil
import subprocess
import sys
import tarfile
import tempfile
from typing import Any, NamedTuple, Optional
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax.base import Batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu')
# The launch scripts of the package (emcl_jax/launch/{name}.py, which
# experiments/{name}.py runs); the other scripts of experiments/ are studies.
LAUNCH = ('run', 'sweep', 'reproduce', 'summarize')


def tmp_dir(test) -> str:
  """A fresh folder, removed after `test`. (Not absltest's
  `create_tempdir`: it reads --test_tmpdir, and the in-process launch tests
  parse absl's flags anew.)"""
  folder = tempfile.mkdtemp()
  test.addCleanup(shutil.rmtree, folder, True)
  return folder


# --- the scripts ------------------------------------------------------------


def study(name: str) -> Any:
  """experiments/{name}.py as a module (its sibling helpers importable), once
  per process: a study defines absl flags, which a second import under
  another name would define again. (Kept as sys.modules['study_{name}'],
  the key tests/test_launch.py uses too.)"""
  folder = os.path.join(ROOT, 'experiments')
  if folder not in sys.path:
    sys.path.append(folder)
  module = sys.modules.get(f'study_{name}')
  if module is None:
    spec = importlib.util.spec_from_file_location(
        f'study_{name}', os.path.join(folder, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules[f'study_{name}'] = module
  return module


class Result(NamedTuple):
  """What a script run in this process left: as a finished process's."""
  returncode: int
  stdout: str
  stderr: str


def call(name: str, *argv: str) -> Result:
  """`python experiments/{name}.py *argv`, in this process: the flags parsed
  as the script parses them (`cli.parse`), then its main, with sys.argv,
  stdout and stderr its own. The exit code is SystemExit's (bad input: 2,
  a diverging loss: 1), else 0; any other exception propagates."""
  from emcl_jax.launch import cli  # pylint: disable=g-import-not-at-top
  if name in LAUNCH:
    main = importlib.import_module(f'emcl_jax.launch.{name}').main
    script = name
  else:
    main, script = study(name).main, study(name).SCRIPT
  command = [os.path.join('experiments', f'{name}.py'), *argv]
  out, err = io.StringIO(), io.StringIO()
  code = 0
  with mock.patch.object(sys, 'argv', command), \
      contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
      main(cli.parse(script, command))
    except SystemExit as e:
      if isinstance(e.code, str):
        err.write(e.code + '\n')
      code = 1 if isinstance(e.code, str) else (e.code or 0)
  return Result(code, out.getvalue(), err.getvalue())


def run_script(name: str, *args: str, timeout: float = 600,
               env: Optional[dict[str, str]] = None,
               **kwargs: Any) -> subprocess.CompletedProcess:
  """`python experiments/{name}.py *args` in a process of its own (with
  `ENV`, or `env`), waited for; its output captured as text."""
  return subprocess.run(
      [sys.executable, os.path.join(ROOT, 'experiments', f'{name}.py'),
       *args], capture_output=True, text=True, env=ENV if env is None else env,
      timeout=timeout, check=False, **kwargs)


def default_sigint(argv: list[str]) -> list[str]:
  """`argv` (a Python command) run with SIGINT at its default disposition,
  for a child a test interrupts as Ctrl-C in a terminal would (a child of a
  shell's background job inherits SIGINT ignored, and Python then installs
  no KeyboardInterrupt handler). A small Python process resets it and
  execs `argv` (exec keeps the default; no fork-time code runs in the
  test's threaded process)."""
  reset = ('import os, signal, sys; '
           'signal.signal(signal.SIGINT, signal.SIG_DFL); '
           'os.execv(sys.argv[1], sys.argv[1:])')
  return [sys.executable, '-c', reset, *argv]


# --- data in the official formats -------------------------------------------


def write_mnist(folder: str, n_train: int = 30, n_test: int = 12,
                gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
  """MNIST's four IDX files in `folder` (gzipped unless not `gz`), random
  images and labels; returns {file name without .gz: array}."""
  from emcl_jax.data import idx  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  sfx = '.gz' if gz else ''
  arrays = {
      'train-images-idx3-ubyte': rng.integers(0, 256, (n_train, 28, 28)),
      'train-labels-idx1-ubyte': rng.integers(0, 10, n_train),
      't10k-images-idx3-ubyte': rng.integers(0, 256, (n_test, 28, 28)),
      't10k-labels-idx1-ubyte': rng.integers(0, 10, n_test),
  }
  for name, arr in arrays.items():
    idx.write_idx(os.path.join(folder, name + sfx), arr)
  return arrays


def cifar_batch(n: int, seed: int, num_classes: int = 100) -> dict:
  """A CIFAR-100 pickle's dict as the official files hold it (byte-string
  keys): n random images [n, 3072] uint8, fine labels cycling over the
  classes (n = 200: two images a class)."""
  rng = np.random.default_rng(seed)
  return {
      b'filenames': [b'img%d.png' % i for i in range(n)],
      b'batch_label': b'training batch 1 of 1',
      b'fine_labels': [i % num_classes for i in range(n)],
      b'coarse_labels': [i % 20 for i in range(n)],
      b'data': rng.integers(0, 256, (n, 3072), dtype=np.uint8),
  }


def cifar_files(n_train: int = 300, n_test: int = 100) -> dict[str, dict]:
  """The dicts of cifar-100-python/{train,test,meta}."""
  return {'train': cifar_batch(n_train, 0), 'test': cifar_batch(n_test, 1),
          'meta': {b'fine_label_names': [b'c%d' % i for i in range(100)],
                   b'coarse_label_names': [b'g%d' % i for i in range(20)]}}


def write_cifar(folder: str, n_train: int = 300, n_test: int = 100,
                protocol: int = 2) -> dict[str, dict]:
  """The cifar-100-python folder in `folder`, pickled with `protocol` (the
  official files': 2); returns the dicts (`cifar_files`)."""
  sub = os.path.join(folder, 'cifar-100-python')
  os.makedirs(sub, exist_ok=True)
  batches = cifar_files(n_train, n_test)
  for name, batch in batches.items():
    with open(os.path.join(sub, name), 'wb') as f:
      pickle.dump(batch, f, protocol=protocol)
  return batches


def cifar_archive(n_train: int = 200,
                  n_test: int = 100) -> tuple[bytes, dict[str, dict]]:
  """cifar-100-python.tar.gz (the folder cifar-100-python/ with train, test
  and meta pickled with protocol 2, as the official archive) as bytes, and
  the dicts (`cifar_files`)."""
  files = cifar_files(n_train, n_test)
  buf = io.BytesIO()
  with tarfile.open(fileobj=buf, mode='w:gz') as tar:
    folder = tarfile.TarInfo('cifar-100-python')
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(folder)
    for name, obj in files.items():
      raw = pickle.dumps(obj, protocol=2)
      info = tarfile.TarInfo(f'cifar-100-python/{name}')
      info.size = len(raw)
      tar.addfile(info, io.BytesIO(raw))
  return buf.getvalue(), files


# --- tiny parameters --------------------------------------------------------


def mlp_apply(params, x):
  """A tanh MLP with one hidden layer (and an output bias if params has
  one, `b2`)."""
  out = jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2']
  return out + params['b2'] if 'b2' in params else out


def make_params(seed: int = 3, d: int = 5, hidden: int = 6, classes: int = 3,
                biases: bool = False) -> dict[str, jnp.ndarray]:
  """`mlp_apply`'s parameters, float32: weights w1 [d, hidden] and w2
  [hidden, classes] normal * 0.5; the hidden bias b1 zeros, or with
  `biases` normal * 0.1 and an output bias b2 (zeros)."""
  rng = np.random.default_rng(seed)
  params = {'w1': rng.normal(size=(d, hidden)) * 0.5,
            'b1': np.zeros(hidden),
            'w2': rng.normal(size=(hidden, classes)) * 0.5}
  if biases:
    params['b1'] = rng.normal(size=hidden) * 0.1
    params['b2'] = np.zeros(classes)
  return {k: jnp.asarray(v, jnp.float32) for k, v in params.items()}


def make_batch(key, n: int = 4, d: int = 5, classes: int = 3,
               task: int = 0):
  """A `Batch` for `mlp_apply`: n normal inputs [n, d], labels uniform in
  [0, classes), every sample of task `task`."""
  kx, ky = jax.random.split(key)
  return Batch(jax.random.normal(kx, (n, d)),
               jax.random.randint(ky, (n,), 0, classes),
               jnp.full((n,), task, jnp.int32))
