"""Downloads a benchmark's official archive into a cache folder, checks its
MD5 and extracts it into the layout the readers expect.

  folder = download.fetch('cifar100')   # ~/.cache/emcl_jax/cifar-100-python
  split = cifar100.read_dir(folder)

The cache folder is `cache_dir` if given, else $EMCL_JAX_DATA, else
~/.cache/emcl_jax. In it:

  downloads/<file>.part   a download in progress (resumed by a Range request)
  downloads/<file>        the archive, kept once its MD5 matched
  <folder>/               the extracted archive; <folder>/.complete (its MD5)
                          is written last, so a half-extracted folder is
                          never taken for data
  .<folder>.*/            a temporary extraction (removed when done)

$EMCL_JAX_MIRROR replaces the official base URL (the file name and MD5 stay
the official ones): url = mirror.rstrip('/') + '/' + file name; file:// URLs
work too. Only the standard library is used (urllib); tqdm draws the bar on
a terminal and is imported on first use.

Checksums:
- CIFAR-100: torchvision, `torchvision/datasets/cifar.py`, `CIFAR100.tgz_md5`
  (pytorch/vision).
- TinyImageNet: Avalanche, `avalanche/benchmarks/datasets/tiny_imagenet/
  tiny_imagenet.py`, `TinyImagenet.md5` (ContinualAI/avalanche); the same
  value in several other public loaders.
"""

import gzip
import hashlib
import http.client
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from typing import Callable, NamedTuple

from emcl_jax import files
from emcl_jax.data.download_progress import Reporter, megabytes
from emcl_jax.errors import DataError, first_line

DATA_ENV = 'EMCL_JAX_DATA'
MIRROR_ENV = 'EMCL_JAX_MIRROR'
DEFAULT_CACHE = os.path.join('~', '.cache', 'emcl_jax')
MARKER = '.complete'
TIMEOUT_S = 10.0  # socket timeout: connecting, and each read
CHUNK = 1 << 16  # bytes per read, per MD5 update
ATTEMPTS = 3  # requests per fetch while each one adds bytes

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


def url_of(archive: Archive) -> str:
  """The URL to download `archive` from: $EMCL_JAX_MIRROR + '/' + its file
  name when the variable is set, else the official URL."""
  mirror = os.environ.get(MIRROR_ENV)
  if mirror:
    return mirror.rstrip('/') + '/' + archive.filename
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


def safe_member(name: str) -> bool:
  """Whether an archive member's name stays inside the extraction folder:
  relative, and without a '..' part."""
  parts = name.replace('\\', '/').split('/')
  return not (name.startswith(('/', '\\')) or os.path.isabs(name)
              or re.match(r'^[A-Za-z]:', name) or '..' in parts)


def _manual(archive: Archive) -> str:
  """The way around a failed download, for the end of an error line."""
  return (f'download {archive.filename} yourself from {archive.homepage}, '
          f'extract it and pass --data_dir=FOLDER (holding {archive.folder}/)'
          f', or set {MIRROR_ENV} to a mirror')


def _network_error(url: str, archive: Archive, e: BaseException) -> DataError:
  if isinstance(e, urllib.error.HTTPError):
    reason = f'HTTP {e.code} {e.reason}'
  elif isinstance(e, urllib.error.URLError):
    reason = first_line(e.reason) if isinstance(
        e.reason, BaseException) else str(e.reason)
  elif isinstance(e, TimeoutError):
    reason = f'no answer within {TIMEOUT_S:g} s'
  else:
    reason = first_line(e)
  return DataError(f'cannot download {url}: {reason[:200]}; '
                   f'{_manual(archive)}')


def _content_range(value: str | None) -> tuple[int | None, int | None]:
  """(first byte, total size) of a Content-Range header, None where absent
  or '*'."""
  m = re.match(r'\s*bytes\s+(\d+)-\d+/(\d+|\*)', value or '')
  if not m:
    return None, None
  return int(m.group(1)), None if m.group(2) == '*' else int(m.group(2))


def _transfer(url: str, part: str, archive: Archive,
              progress: ProgressFn) -> tuple[int, int | None]:
  """One request: appends to `part` (resumed with a Range request when it
  holds bytes and the server answers 206; rewritten from zero otherwise).

  Returns:
    (bytes in `part`, the archive's size or None if the server did not
    say). A transfer that ends early (closed connection, read timeout)
    returns what it has.

  Raises:
    DataError: the server cannot be reached or answers an HTTP error.
  """
  offset = os.path.getsize(part) if os.path.exists(part) else 0
  request = urllib.request.Request(url, headers={'User-Agent': 'emcl_jax'})
  if offset:
    request.add_header('Range', f'bytes={offset}-')
  try:
    response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
  except urllib.error.HTTPError as e:
    if e.code == 416 and offset:  # the range is past the end: start again
      os.remove(part)
      return 0, None
    raise _network_error(url, archive, e) from None
  except (OSError, http.client.HTTPException, ValueError) as e:
    raise _network_error(url, archive, e) from None
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
    with open(part, mode) as f:
      while True:
        try:
          chunk = response.read(CHUNK)
        except (OSError, http.client.HTTPException):
          break  # ended early: keep what arrived
        if not chunk:
          break
        f.write(chunk)
        done += len(chunk)
        progress(done, total)
  return done, total


def _download(url: str, part: str, archive: Archive,
              progress: ProgressFn) -> None:
  """Downloads `url` into `part`, resuming up to ATTEMPTS times in a row
  while each request adds bytes.

  Raises:
    DataError: the server cannot be reached, or the transfer keeps stopping
      early (`part` is kept: the next run resumes it).
  """
  before = os.path.getsize(part) if os.path.exists(part) else 0
  for _ in range(ATTEMPTS):
    done, total = _transfer(url, part, archive, progress)
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
    except OSError as e:  # the disk, not the archive
      raise DataError(f'cannot extract {path} into {root}: '
                      f'{first_line(e)[:120]}; free some space or set '
                      f'{DATA_ENV} to another folder') from None
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
  if isinstance(archive, Archive):
    return archive
  if archive not in ARCHIVES:
    raise DataError(f'no archive named {archive!r} to download; use one of '
                    f'{", ".join(ARCHIVES)}')
  return ARCHIVES[archive]


def fetch(archive: Archive | str, cache_dir: str | None = None, *,
          progress: ProgressFn | None = None) -> str:
  """Downloads, checks and extracts `archive` once; later calls return the
  cached folder without touching the network.

  Args:
    archive: an Archive (e.g. CIFAR100) or its name, a key of ARCHIVES.
    cache_dir: the cache folder (default: $EMCL_JAX_DATA, else
      ~/.cache/emcl_jax).
    progress: called as progress(done_bytes, total_bytes) while downloading
      (total None until known; the last call has done == total); default: a
      Reporter on stderr.

  Returns:
    The extracted folder, `{cache_dir}/{archive.folder}`.

  Raises:
    DataError: the server cannot be reached or answers an error (naming the
      URL and the manual way), the download keeps stopping early (run again
      to resume), the archive fails its MD5 or is corrupt (it is removed:
      run again), or the cache folder cannot be written.
  """
  archive = _archive(archive)
  root = _cache_dir(cache_dir)
  folder = os.path.join(root, archive.folder)
  if is_complete(folder, archive):
    return folder
  downloads = os.path.join(root, 'downloads')
  try:
    os.makedirs(downloads, exist_ok=True)
  except OSError as e:
    raise DataError(f'cannot create the cache folder {downloads}: '
                    f'{first_line(e)}; pass cache_dir or set {DATA_ENV} to a '
                    'writable folder') from None
  path = os.path.join(downloads, archive.filename)
  url = url_of(archive)
  if os.path.isfile(path) and md5sum(path) != archive.md5:
    os.remove(path)  # a stale or damaged copy: fetched again
  if not os.path.isfile(path):
    part = path + '.part'
    _download(url, part, archive,
              Reporter(archive.filename) if progress is None else progress)
    got = md5sum(part)
    if got != archive.md5:
      os.remove(part)
      raise DataError(f'the archive at {url} failed its checksum (MD5 {got}, '
                      f'expected {archive.md5}); it was removed, run again to '
                      'fetch it again')
    os.replace(part, path)
  return _extract(path, root, url, archive)
