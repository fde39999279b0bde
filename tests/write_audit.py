"""Runs experiments/run.py's (or another script's) command line in this
process and reports, on stderr, every file or folder under FOLDER that it
creates, opens for writing, renames or removes (Python's audit events):

  python tests/write_audit.py FOLDER <run.py flags>   # `wrote: PATH` lines
  python tests/write_audit.py FOLDER --script=sweep <sweep.py flags>

Writes made by native code (orbax's tensorstore) raise no audit event; the
tests compare the folder's files as well.
"""

import importlib
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
  script, args = 'run', sys.argv[2:]
  if args and args[0].startswith('--script='):
    script, args = args[0].split('=', 1)[1], args[1:]
  module = importlib.import_module(f'emcl_jax.launch.{script}')
  sys.argv = [f'{script}.py', *args]
  module.entry()


if __name__ == '__main__':
  main()
