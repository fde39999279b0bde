"""Reads the pickled benchmark files (CIFAR-100, miniImageNet) safely.

Unpickling runs whatever code the file names, so only the globals that a
pickled NumPy array or scalar needs are allowed; dicts, lists, strings,
bytes and numbers need none. Anything else is refused as not a data file.
"""

import io
import pickle

import numpy as np

from emcl_jax.errors import DataError, first_line

_ALLOWED = {
    ('numpy', 'ndarray'), ('numpy', 'dtype'),
    ('numpy.core.multiarray', '_reconstruct'),
    ('numpy._core.multiarray', '_reconstruct'),
    ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', 'scalar'),
    ('numpy.core.numeric', '_frombuffer'),
    ('numpy._core.numeric', '_frombuffer'),
    ('_codecs', 'encode'),
}


class _DataUnpickler(pickle.Unpickler):
  """An unpickler that builds NumPy arrays and builtins only."""

  def find_class(self, module, name):
    if (module, name) in _ALLOWED:
      if module.startswith('numpy.core.') and hasattr(np, '_core'):
        module = 'numpy._core.' + module[len('numpy.core.'):]  # NumPy 2
      return super().find_class(module, name)
    raise pickle.UnpicklingError(f'refusing global {module}.{name}')


def loads(raw: bytes, what: str, fix: str):
  """Unpickles `raw` (the contents of `what`, a path for messages).

  Args:
    raw: the file's bytes.
    what: the file's name in error messages.
    fix: the sentence that ends an error message, saying what to do.

  Returns:
    The object, read with encoding='bytes' (Python 2 pickles keep their
    byte-string keys, such as CIFAR's b'data').

  Raises:
    DataError: truncated, corrupt, or not a plain data pickle.
  """
  try:
    return _DataUnpickler(io.BytesIO(raw), encoding='bytes').load()
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
          AttributeError, ImportError, IndexError, KeyError,
          MemoryError) as e:
    raise DataError(f'{what} is truncated or corrupt, not a data pickle '
                    f'({first_line(e)[:120]}); {fix}') from None


def read_bytes(path: str, fix: str) -> bytes:
  """The whole file at `path`.

  Raises:
    DataError: it cannot be read (the message ends in `fix`).
  """
  try:
    with open(path, 'rb') as f:
      return f.read()
  except OSError as e:
    raise DataError(f'cannot read {path}: {e}; {fix}') from None


def str_keys(obj: dict) -> dict:
  """`obj` with byte-string keys decoded (Python 2 pickles read with
  encoding='bytes' keep b'data' where Python 3 ones have 'data')."""
  return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}
