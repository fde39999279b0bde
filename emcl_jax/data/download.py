"""Downloads a benchmark's official archive into a cache folder, checks its
MD5 and extracts it into the layout the readers expect.

  folder = download.fetch('cifar100')   # ~/.cache/emcl_jax/cifar-100-python
  split = cifar100.read_dir(folder)

The cache folder is `cache_dir` if given, else $EMCL_JAX_DATA, else
~/.cache/emcl_jax. In it:

  .downloads/<file>.part  a download in progress (resumed by a Range request)
  .downloads/<file>       the archive, kept once its MD5 matched
  .downloads/<file>.lock  while a process downloads or extracts <file>: a
                          second process waits for it, then uses its result
  <folder>/               the extracted archive; <folder>/.complete (its MD5)
                          is written last, so a half-extracted folder is
                          never taken for data
  .<folder>.*/            a temporary extraction (removed when done)

The cache's own folders start with '.', so a reader that takes the folders
of a data folder for classes (miniImageNet's) never counts them; they are
made only when a download starts, and removed again when a failure leaves
them empty. An archive in `downloads/`, where earlier versions kept it, is
moved to `.downloads/` on first use.

Settings, checked before anything is written (a bad value is one line
naming it); the last three are also keyword arguments of `fetch`:

  $EMCL_JAX_MIRROR  replaces the official base URL (the file name and MD5
      stay the official ones): url = mirror.rstrip('/') + '/' + file name;
      an http://, https:// or file:// URL.
  $EMCL_JAX_DOWNLOAD_TIMEOUT  seconds a whole download may take, all its
      requests together (default 3600; 0: no deadline).
  $EMCL_JAX_LOW_SPEED_LIMIT, $EMCL_JAX_LOW_SPEED_TIME  a download whose
      speed, averaged over the last LOW_SPEED_TIME seconds (default 30),
      falls under LOW_SPEED_LIMIT bytes per second (default 1024; 0: never)
      stops, like curl's --speed-limit and --speed-time.

A download that stops (deadline, low speed, Ctrl-C, a connection that keeps
closing early) keeps its .part file: the next run resumes it. Only the
standard library is used (urllib); tqdm draws the bar on a terminal and is
imported on first use.

Checksums:
- CIFAR-100: torchvision, `torchvision/datasets/cifar.py`, `CIFAR100.tgz_md5`
  (pytorch/vision).
- TinyImageNet: Avalanche, `avalanche/benchmarks/datasets/tiny_imagenet/
  tiny_imagenet.py`, `TinyImagenet.md5` (ContinualAI/avalanche); the same
  value in several other public loaders.
"""

import contextlib
import fcntl
import gzip
import hashlib
import http.client
import os
import re
import shutil
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from typing import Callable, Iterator, NamedTuple

from emcl_jax import files
from emcl_jax.data.download_pace import MIRROR_ENV, TIMEOUT_ENV
from emcl_jax.data.download_pace import Limits, Pace, download_limits
from emcl_jax.data.download_progress import Reporter, megabytes
from emcl_jax.errors import DataError, first_line

DATA_ENV = 'EMCL_JAX_DATA'
DEFAULT_CACHE = os.path.join('~', '.cache', 'emcl_jax')
DOWNLOADS = '.downloads'  # the archives' folder in the cache
OLD_DOWNLOADS = 'downloads'  # where earlier versions kept them
MARKER = '.complete'
CHUNK = 1 << 16  # the most bytes per read, per MD5 update
ATTEMPTS = 3  # requests per fetch while each one adds bytes
LOCK_POLL_S = 0.2  # how often a waiting process tries the lock again

# progress(done_bytes, total_bytes): total is None while the server has not
# said; the last call of a finished download has done == total.
ProgressFn = Callable[[int, int | None], None]


class Archive(NamedTuple):
  """One official archive of a benchmark."""
  name: str  # the benchmark, e.g. 'cifar100'
  url: str  # the official URL; its last part is the file name
  md5: str  # of the whole archive, 32 hex digits
  folder: str  # the top-level folder it extracts to
  homepage: str  # where a user downloads it by hand

  @property
  def filename(self) -> str:
    """The archive's file name: the last part of its URL."""
    return self.url.rsplit('/', 1)[-1]


CIFAR100 = Archive(
    name='cifar100',
    url='https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz',
    md5='eb9058c3a382ffc7106e4002c42a8d85',
    folder='cifar-100-python',
    homepage='https://www.cs.toronto.edu/~kriz/cifar.html')

TINYIMAGENET = Archive(
    name='tinyimagenet',
    url='http://cs231n.stanford.edu/tiny-imagenet-200.zip',
    md5='90528d7ca1a48142e341f4ef8d21d0de',
    folder='tiny-imagenet-200',
    homepage='http://cs231n.stanford.edu/')

ARCHIVES = {a.name: a for a in (CIFAR100, TINYIMAGENET)}


def cache_dir(explicit: str | None = None) -> str:
  """The cache folder: `explicit` if given, else $EMCL_JAX_DATA, else
  ~/.cache/emcl_jax (user-expanded; not created)."""
  chosen = explicit or os.environ.get(DATA_ENV) or DEFAULT_CACHE
  return os.path.expanduser(chosen)


_cache_dir = cache_dir  # fetch's argument of the same name hides it


def mirror_base(value: str) -> str:
  """$EMCL_JAX_MIRROR's value, checked: an http:// or https:// URL with a
  host, or a file:// URL with a path (surrounding blanks and trailing
  slashes dropped).

  Raises:
    DataError: a blank value or one that is not such a URL, naming the
      variable and what a valid value looks like.
  """
  text = value.strip()
  try:
    parts = urllib.parse.urlsplit(text)
    valid = (parts.scheme in ('http', 'https') and bool(parts.hostname)
             or parts.scheme == 'file' and bool(parts.path)) and (
                 parts.port is None or parts.port > 0)
  except ValueError:  # a port that is not a number
    valid = False
  if not valid:
    what = 'blank' if not text else f'{value!r}, not a URL it can use'
    raise DataError(f'{MIRROR_ENV} is {what}; set it to the base URL of a '
                    'mirror of the archives (http://HOST/PATH, '
                    'https://HOST/PATH or file:///FOLDER), or unset it to '
                    'use the official hosts')
  return text.rstrip('/')


def url_of(archive: Archive) -> str:
  """The URL to download `archive` from: $EMCL_JAX_MIRROR + '/' + its file
  name when the variable is set, else the official URL.

  Raises:
    DataError: $EMCL_JAX_MIRROR is set but blank or not a URL.
  """
  mirror = os.environ.get(MIRROR_ENV)
  if mirror is not None:
    return mirror_base(mirror) + '/' + archive.filename
  return archive.url


def md5sum(path: str) -> str:
  """The MD5 of the file at `path` in hex, read in chunks."""
  digest = hashlib.md5(usedforsecurity=False)
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(CHUNK), b''):
      digest.update(chunk)
  return digest.hexdigest()


def is_complete(folder: str, archive: Archive) -> bool:
  """Whether `folder` holds a finished extraction of `archive`: its marker
  file exists and names the archive's MD5."""
  try:
    with open(os.path.join(folder, MARKER)) as f:
      return f.read().strip() == archive.md5
  except OSError:
    return False


# Whether an archive member's name stays inside the extraction folder (the
# check every path built from text the library did not choose goes through).
safe_member = files.inside


def _manual(archive: Archive) -> str:
  """The way around a failed download, for the end of an error line."""
  return (f'download {archive.filename} yourself from {archive.homepage}, '
          f'extract it and pass --data_dir=FOLDER (holding {archive.folder}/)'
          f', or set {MIRROR_ENV} to a mirror')


def _network_error(url: str, archive: Archive, e: BaseException,
                   wait_s: float) -> DataError:
  if isinstance(e, urllib.error.HTTPError):
    reason = f'HTTP {e.code} {e.reason}'
  elif isinstance(e, urllib.error.URLError):
    reason = first_line(e.reason) if isinstance(
        e.reason, BaseException) else str(e.reason)
  elif isinstance(e, TimeoutError):
    reason = f'no answer within {wait_s:g} s'
  else:
    reason = first_line(e)
  return DataError(f'cannot download {url}: {reason[:200]}; '
                   f'{_manual(archive)}')


def cache_error(root: str, e: OSError, explicit: str | None) -> DataError:
  """The one-line error of a cache folder `root` that cannot be written
  (disk full, read-only, not a folder): names it, the file, and how to
  choose another (`explicit`: the cache_dir that was passed, if any)."""
  path = f' ({e.filename})' if e.filename and e.filename != root else ''
  other = ('pass another --data_dir' if explicit else
           f'set {DATA_ENV} (or pass --data_dir) to another folder')
  return DataError(f'cannot write the download cache {root}: '
                   f'{e.strerror or first_line(e)}{path}; free space or '
                   f'allow writing there, or {other}')


def _size(path: str) -> int:
  """The size of the file at `path`; 0 if there is none."""
  return os.path.getsize(path) if os.path.exists(path) else 0


def _kept(part: str) -> str:
  """What an interrupted download leaves, for its error line."""
  size = _size(part)
  return (f'{part} keeps {megabytes(size)}: run again to resume it' if size
          else 'run again to start it again')


def _content_range(value: str | None) -> tuple[int | None, int | None]:
  """(first byte, total size) of a Content-Range header, None where absent
  or '*'."""
  m = re.match(r'\s*bytes\s+(\d+)-\d+/(\d+|\*)', value or '')
  if not m:
    return None, None
  return int(m.group(1)), None if m.group(2) == '*' else int(m.group(2))


def _stop_if_due(pace: Pace, url: str, part: str, done: int,
                 total: int | None) -> None:
  """Raises the DataError of a download that must stop now (`Pace.due`)."""
  due = pace.due()
  if due:
    why, fix = due
    of = '' if total is None else f' of {megabytes(total)}'
    raise DataError(f'the download of {url} stopped: {why}; {part} keeps '
                    f'{megabytes(done)}{of}: run again to resume it, or '
                    f'{fix}')


def _transfer(url: str, part: str, archive: Archive, progress: ProgressFn,
              pace: Pace) -> tuple[int, int | None]:
  """One request: appends to `part` (resumed with a Range request when it
  holds bytes and the server answers 206; rewritten from zero otherwise),
  reading whatever has arrived (so progress shows from the first byte).

  Returns:
    (bytes in `part`, the archive's size or None if the server did not
    say). A transfer that ends early (closed connection, read timeout)
    returns what it has.

  Raises:
    DataError: the server cannot be reached or answers an HTTP error, or
      `pace` says the download must stop (past its deadline, too slow).
    OSError: `part` cannot be written.
  """
  offset = _size(part)
  request = urllib.request.Request(url, headers={'User-Agent': 'emcl_jax'})
  if offset:
    request.add_header('Range', f'bytes={offset}-')
  _stop_if_due(pace, url, part, offset, None)
  wait_s = pace.wait_s()
  try:
    response = urllib.request.urlopen(request, timeout=wait_s)
  except urllib.error.HTTPError as e:
    if e.code == 416 and offset:  # the range is past the end: start again
      os.remove(part)
      return 0, None
    raise _network_error(url, archive, e, wait_s) from None
  except (OSError, http.client.HTTPException, ValueError) as e:
    _stop_if_due(pace, url, part, offset, None)
    raise _network_error(url, archive, e, wait_s) from None
  with response:
    length = response.headers.get('Content-Length')
    length = int(length) if length and length.isdigit() else None
    start, total = _content_range(response.headers.get('Content-Range'))
    if getattr(response, 'status', None) == 206 and start == offset:
      done = offset
      total = total if total is not None else (
          None if length is None else offset + length)
      mode = 'ab'
    else:  # 200 (the Range was ignored), or a range we did not ask for
      done, total, mode = 0, length, 'wb'
    progress(done, total)
    read = getattr(response, 'read1', None) or response.read
    with open(part, mode) as f:
      while True:
        try:
          chunk = read(CHUNK)
        except (OSError, http.client.HTTPException):
          _stop_if_due(pace, url, part, done, total)
          break  # ended early: keep what arrived
        if not chunk:
          break
        f.write(chunk)
        done += len(chunk)
        pace.add(len(chunk))
        progress(done, total)
        if total is None or done < total:
          _stop_if_due(pace, url, part, done, total)
  return done, total


def _download(url: str, part: str, archive: Archive, progress: ProgressFn,
              limits: Limits) -> None:
  """Downloads `url` into `part`, resuming up to ATTEMPTS times in a row
  while each request adds bytes, within `limits`.

  Raises:
    DataError: the server cannot be reached, the download is past its
      deadline or too slow, or the transfer keeps stopping early (`part` is
      kept: the next run resumes it).
    OSError: `part` cannot be written.
  """
  pace = Pace(limits)
  before = _size(part)
  for _ in range(ATTEMPTS):
    done, total = _transfer(url, part, archive, progress, pace)
    if total is not None and done >= total:
      return
    if total is None:
      if done:  # the server closed a response of unknown length
        progress(done, done)
        return
      before = 0  # a 416 reset (or an empty answer): ask again from zero
      continue
    if done <= before:
      break
    before = done
  of = '' if total is None else f' of {megabytes(total)}'
  raise DataError(f'the download of {url} stopped at {megabytes(done)}{of}; '
                  f'run again to resume it, or {_manual(archive)}')


def _same_file(fd: int, path: str) -> bool:
  """Whether the open file `fd` is still the file at `path`."""
  try:
    now = os.stat(path)
  except FileNotFoundError:
    return False
  held = os.fstat(fd)
  return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)


def _holder(path: str) -> str:
  """Who holds the lock file at `path`: 'process PID', as it wrote."""
  try:
    with open(path) as f:
      pid = f.read().strip()
  except OSError:
    pid = ''
  return f'process {pid}' if pid.isdigit() else 'another process'


@contextlib.contextmanager
def entry_lock(path: str, label: str, wait_s: float) -> Iterator[None]:
  """Holds an exclusive lock (fcntl.flock) on the file `path` for the block,
  so one process at a time downloads or extracts a cache entry. The file
  and its folder are made if missing; the file holds the holder's pid and
  is removed on the way out, while still held (a waiter that then holds a
  removed file takes the new one).

  Args:
    path: the lock file.
    label: the entry, for the line a waiting process writes on stderr.
    wait_s: the longest wait for another process; 0: no limit.

  Raises:
    DataError: another process held the lock for more than `wait_s`.
    OSError: the folder or the file cannot be made.
  """
  start, said = time.monotonic(), False
  while True:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except FileNotFoundError:  # its folder was removed meanwhile
      continue
    try:
      while True:
        try:
          fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
          break
        except BlockingIOError:
          if not said:
            sys.stderr.write(f'{label}: waiting for {_holder(path)}, which '
                             f'is fetching it into {os.path.dirname(path)}\n')
            sys.stderr.flush()
            said = True
          if wait_s and time.monotonic() - start > wait_s:
            raise DataError(
                f'{_holder(path)} has been fetching {label} into '
                f'{os.path.dirname(path)} for more than {wait_s:g} s '
                f'({TIMEOUT_ENV}); run again once it has finished') from None
          time.sleep(LOCK_POLL_S)
      if _same_file(fd, path):
        break
    except BaseException:
      os.close(fd)
      raise
    os.close(fd)  # the file was removed while this process waited: again
  try:
    os.ftruncate(fd, 0)
    os.write(fd, f'{os.getpid()}\n'.encode())
    yield
  finally:
    with contextlib.suppress(OSError):
      os.remove(path)
    os.close(fd)


def _adopt_old(root: str, filename: str) -> None:
  """Moves the archive (and its .part) of `filename` from `downloads/`,
  where earlier versions kept it, to `.downloads/`; removes `downloads/`
  if that leaves it empty."""
  old = os.path.join(root, OLD_DOWNLOADS)
  for name in (filename, filename + '.part'):
    here, there = os.path.join(old, name), os.path.join(root, DOWNLOADS, name)
    if os.path.isfile(here) and not os.path.exists(there):
      os.replace(here, there)
  with contextlib.suppress(OSError):
    os.rmdir(old)


def _fetch_archive(url: str, path: str, archive: Archive,
                   progress: ProgressFn, limits: Limits) -> None:
  """Downloads `url` to `path` through `path`.part and checks its MD5.

  Raises:
    DataError: as `_download`, or the MD5 does not match (the file is
      removed).
    KeyboardInterrupt: Ctrl-C; its message says what is kept.
    OSError: the cache cannot be written.
  """
  part = path + '.part'
  try:
    _download(url, part, archive, progress, limits)
  except BaseException as e:
    if os.path.isfile(part) and not _size(part):
      os.remove(part)  # nothing to resume
    if isinstance(e, KeyboardInterrupt):
      raise KeyboardInterrupt(f'the download of {url} was interrupted; '
                              f'{_kept(part)}') from None
    raise
  got = md5sum(part)
  if got != archive.md5:
    os.remove(part)
    raise DataError(f'the archive at {url} failed its checksum (MD5 {got}, '
                    f'expected {archive.md5}); it was removed, run again to '
                    'fetch it again')
  os.replace(part, path)


def _members(path: str, archive: Archive):
  """Opens the archive and checks its member names (tar: regular files and
  folders only). Returns (the open archive, member list)."""
  if path.endswith('.zip'):
    handle = zipfile.ZipFile(path)
    members = handle.infolist()
    names = [m.filename for m in members]
  else:
    handle = tarfile.open(path, 'r:*')
    members = handle.getmembers()
    names = [m.name for m in members]
    odd = [m.name for m in members if not (m.isfile() or m.isdir())]
    if odd:
      handle.close()
      raise DataError(f'{path} holds {odd[0]!r}, a link or device, not a '
                      f'file; {_manual(archive)}')
  bad = [n for n in names if not safe_member(n)]
  if bad:
    handle.close()
    raise DataError(f'{path} holds {bad[0]!r}, a path outside its folder; '
                    f'refusing to extract it; {_manual(archive)}')
  return handle, members


def _extract(path: str, root: str, url: str, archive: Archive) -> str:
  """Extracts `path` into a temporary folder in `root`, moves its
  `archive.folder` to `root` and writes the marker last.

  Returns:
    The extracted folder.

  Raises:
    DataError: the archive is truncated or corrupt, or lacks the folder (the
      archive is removed), or holds unsafe members.
    OSError: the cache folder cannot be written (`fetch` names it).
  """
  folder = os.path.join(root, archive.folder)
  tmp = tempfile.mkdtemp(prefix=f'.{archive.folder}.', dir=root)
  try:
    try:
      handle, members = _members(path, archive)
      with handle:
        if isinstance(handle, tarfile.TarFile) and hasattr(
            tarfile, 'data_filter'):
          handle.extractall(tmp, members, filter='data')
        else:
          handle.extractall(tmp, members)
    except (tarfile.TarError, zipfile.BadZipFile, gzip.BadGzipFile,
            EOFError, zlib.error) as e:
      os.remove(path)
      raise DataError(f'the archive from {url} is truncated or corrupt '
                      f'({first_line(e)[:120]}); it was removed, run again '
                      'to fetch it again') from None
    extracted = os.path.join(tmp, archive.folder)
    if not os.path.isdir(extracted):
      os.remove(path)
      raise DataError(f'the archive from {url} has no {archive.folder}/ '
                      'folder; it was removed, run again to fetch it again')
    if os.path.lexists(folder):  # an earlier, unfinished extraction
      shutil.rmtree(folder)
    os.replace(extracted, folder)
    marker = os.path.join(folder, MARKER)
    files.write_file(marker, archive.md5 + '\n')
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return folder


def _archive(archive: Archive | str) -> Archive:
  """`archive`, or the Archive of that name (a key of ARCHIVES)."""
  if isinstance(archive, Archive):
    return archive
  if archive not in ARCHIVES:
    raise DataError(f'no archive named {archive!r} to download; use one of '
                    f'{", ".join(ARCHIVES)}')
  return ARCHIVES[archive]


def fetch(archive: Archive | str, cache_dir: str | None = None, *,
          progress: ProgressFn | None = None, timeout: float | None = None,
          low_speed_limit: float | None = None,
          low_speed_time: float | None = None) -> str:
  """Downloads, checks and extracts `archive` once; later calls return the
  cached folder without touching the network. One process at a time
  fetches an archive into a cache folder: another waits for it (saying so
  on stderr), then uses what it made.

  Args:
    archive: an Archive (e.g. CIFAR100) or its name, a key of ARCHIVES.
    cache_dir: the cache folder (default: $EMCL_JAX_DATA, else
      ~/.cache/emcl_jax).
    progress: called as progress(done_bytes, total_bytes) while downloading
      (total None until known; the last call has done == total); default: a
      Reporter on stderr.
    timeout: seconds the download may take, all its requests together (0:
      no deadline; default: $EMCL_JAX_DOWNLOAD_TIMEOUT, else 3600). Also
      the longest wait for another process fetching the same archive.
    low_speed_limit: the download stops when its speed, averaged over the
      last `low_speed_time` seconds, falls under this many bytes per second
      (0: never; default: $EMCL_JAX_LOW_SPEED_LIMIT, else 1024).
    low_speed_time: the seconds of that average (default:
      $EMCL_JAX_LOW_SPEED_TIME, else 30).

  Returns:
    The extracted folder, `{cache_dir}/{archive.folder}`.

  Raises:
    DataError: a bad setting or $EMCL_JAX_MIRROR (naming it), the server
      cannot be reached or answers an error (naming the URL and the manual
      way), the download is past its deadline, too slow or keeps stopping
      early (run again to resume), the archive fails its MD5 or is corrupt
      (it is removed: run again), or the cache folder cannot be written
      (naming it).
    KeyboardInterrupt: Ctrl-C while downloading; the partial file is kept
      for the next run (the message says so).
  """
  archive = _archive(archive)
  limits = download_limits(timeout, low_speed_limit, low_speed_time)
  url = url_of(archive)
  root = _cache_dir(cache_dir)
  folder = os.path.join(root, archive.folder)
  if is_complete(folder, archive):
    return folder
  downloads = os.path.join(root, DOWNLOADS)
  path = os.path.join(downloads, archive.filename)
  try:
    with files.kept_only_if_used(downloads), entry_lock(
        path + '.lock', archive.filename, limits.timeout):
      if is_complete(folder, archive):  # made while this process waited
        return folder
      _adopt_old(root, archive.filename)
      if os.path.isfile(path) and md5sum(path) != archive.md5:
        os.remove(path)  # a stale or damaged copy: fetched again
      if not os.path.isfile(path):
        _fetch_archive(url, path, archive,
                       Reporter(archive.filename) if progress is None
                       else progress, limits)
      return _extract(path, root, url, archive)
  except OSError as e:
    raise cache_error(root, e, cache_dir) from None
