"""Runs experiments/run.py's command line in this process and reports, on
stderr, every file or folder under FOLDER that it creates, opens for
writing, renames or removes (Python's audit events):

  python tests/write_audit.py FOLDER <run.py flags>   # `wrote: PATH` lines

Writes made by native code (orbax's tensorstore) raise no audit event; the
tests compare the folder's files as well.
"""

import os
import sys

_WRITE_FLAGS = (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND
                | os.O_TRUNC)
_CHANGES = ('os.mkdir', 'os.remove', 'os.rmdir', 'os.rename',
            'shutil.rmtree', 'os.truncate', 'os.link', 'os.symlink',
            'os.chmod', 'os.utime')


def _written(event, args):
  """The paths an audit event writes (none for a read)."""
  if event == 'open':
    path, _, flags = args
    return [path] if isinstance(flags, int) and flags & _WRITE_FLAGS else []
  if event in _CHANGES:
    return list(args[:2])
  return []


def main():
  root = os.path.abspath(sys.argv[1])

  def hook(event, args):
    for path in _written(event, args):
      if isinstance(path, (str, bytes, os.PathLike)):
        path = os.path.abspath(os.fsdecode(path))
        if path == root or path.startswith(root + os.sep):
          os.write(2, f'wrote: {path}\n'.encode())

  sys.addaudithook(hook)
  from emcl_jax.launch import run  # pylint: disable=g-import-not-at-top
  sys.argv = ['run.py', *sys.argv[2:]]
  run.entry()


if __name__ == '__main__':
  main()
