"""Atomic writes: the one helper every writer of the library uses."""

import json
import os
import tempfile
from typing import Any, Union


def write_file(path: str, data: Union[str, bytes]) -> str:
  """Writes `data` (text, or bytes) to `path` atomically: a temporary file
  in the same folder, then a rename, so a reader sees the old file or the
  new one, never a part (the folder is made if missing). The file gets the
  mode a plain `open` gives (0666 less the umask), so a lab-mate can read a
  shared run folder. Returns `path`."""
  folder = os.path.dirname(os.path.abspath(path))
  os.makedirs(folder, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=folder, prefix='.tmp-')
  try:
    with os.fdopen(fd, 'wb' if isinstance(data, bytes) else 'w') as f:
      f.write(data)
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def write_json(path: str, value: Any) -> str:
  """Writes `value` as JSON to `path` atomically (`write_file`)."""
  return write_file(path, json.dumps(value, indent=1))


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask
