"""Files: the one atomic write every writer of the library uses, and the one
check of a relative path built from text the library did not choose (a run
name, an archive member)."""

import contextlib
import errno
import json
import os
import re
import tempfile
from typing import Any, Iterator, Optional, Union


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


def inside(name: str) -> bool:
  """Whether `name`, joined to a folder, stays inside it: a relative path
  (no leading slash, no drive letter) without a '..' part. Archive members
  and run names are checked by it."""
  parts = name.replace('\\', '/').split('/')
  return not (name.startswith(('/', '\\')) or os.path.isabs(name)
              or re.match(r'^[A-Za-z]:', name) or '..' in parts)


def unwritable(folder: str) -> Optional[str]:
  """Why `folder` cannot be made and written ('Not a directory',
  'Permission denied'), or None when it can: its nearest existing ancestor
  is a folder this process may write in. Nothing is created."""
  path = os.path.abspath(folder)
  while not os.path.exists(path):
    path = os.path.dirname(path)
  if not os.path.isdir(path):
    return os.strerror(errno.ENOTDIR)
  if not os.access(path, os.W_OK | os.X_OK):
    return os.strerror(errno.EACCES)
  return None


@contextlib.contextmanager
def kept_only_if_used(folder: str) -> Iterator[None]:
  """On the way out (a failure included), removes `folder` and the parents
  this block created while they are empty: a run refused or failed before
  it wrote anything leaves no empty work directory behind."""
  top = os.path.abspath(folder)
  if os.path.exists(top):
    yield
    return
  while not os.path.exists(os.path.dirname(top)):
    top = os.path.dirname(top)
  try:
    yield
  finally:
    prune_empty(folder, os.path.dirname(top))


def prune_empty(path: str, root: str) -> None:
  """Removes `path` and then its parents while they are empty folders, up to
  (not including) `root`."""
  root = os.path.abspath(root)
  path = os.path.abspath(path)
  while path.startswith(os.path.join(root, '')) and os.path.isdir(path):
    if os.listdir(path):
      break
    try:
      os.rmdir(path)
    except OSError:  # made again, or filled, by another process
      break
    path = os.path.dirname(path)


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask
