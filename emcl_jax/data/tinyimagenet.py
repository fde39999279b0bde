"""TinyImageNet: 200 ImageNet classes, 64x64x3, 500 training and 50
validation images per class (Stanford CS231n, tiny-imagenet-200.zip).

`data_dir` is the unzipped `tiny-imagenet-200` folder or its parent:

  tiny-imagenet-200/wnids.txt                the 200 WordNet ids, one a line
  tiny-imagenet-200/train/<wnid>/images/<wnid>_<i>.JPEG
  tiny-imagenet-200/val/images/val_<i>.JPEG
  tiny-imagenet-200/val/val_annotations.txt  file <TAB> wnid <TAB> box...

`test/` has no labels and is not read. As in La-MAML (montrealrobotics/
La-MAML, `dataloaders/class_incremental_loader.py::_setup_data` and
`dataloaders/idataset.py::iImgnet`, which run torchvision's `ImageFolder` on
train/ and val/):

- the labelled validation images are the test set;
- class ids are the wnids' ranks in sorted order (`ImageFolder` numbers the
  class folders sorted by name; wnids.txt itself is not sorted);
- images are decoded with PIL and converted to RGB (the grayscale JPEGs
  among them get three equal channels);
- train and test images come grouped by class id, each class's files in
  name order (`ImageFolder`'s order).

Deviations: La-MAML resizes every image to 64x64 (a no-op on the official
files), here another size is a DataError; La-MAML reads the validation
images from per-class folders made by its `val_data_format.py` (and its
`download_tinyimgnet.sh` then deletes every .txt), here from the zip's own
val/images and val_annotations.txt; La-MAML's 10% validation hold-out
(`--validation 0.1`), normalisation and augmentation are not done here.

Decoding the 110,000 JPEGs takes a while, so `read` keeps the arrays in an
uncompressed `<folder>.npz` beside the folder (about 1.4 GB; written
atomically), used while the folder's files are unchanged.
"""

import hashlib
import os
import tempfile
import zipfile

import numpy as np

from emcl_jax.data import download
from emcl_jax.data import mnist
from emcl_jax.errors import DataError, first_line

FOLDER = 'tiny-imagenet-200'
SOURCES = ('auto', 'dir', 'download')
NUM_CLASSES = 200
SIZE = 64
EXTENSIONS = ('.jpeg', '.jpg')
CACHE_VERSION = 1
URL = 'http://cs231n.stanford.edu/tiny-imagenet-200.zip'
PUT = (f'unzip {URL} and put its {FOLDER} folder (wnids.txt, train/, val/) '
       'in --data_dir')


def find_folder(data_dir: str) -> str:
  """The `tiny-imagenet-200` folder: `data_dir` or its subfolder of that
  name.

  Raises:
    DataError: `data_dir` is not a directory.
  """
  if not os.path.isdir(data_dir):
    raise DataError(f'--data_dir {data_dir} is not a directory; {PUT}')
  nested = os.path.join(data_dir, FOLDER)
  return os.path.abspath(nested if os.path.isdir(nested) else data_dir)


def read_wnids(folder: str) -> list[str]:
  """The wnids of `folder`/wnids.txt, sorted: class id k is the k-th.

  Raises:
    DataError: the file is missing, empty or lists a wnid twice.
  """
  path = os.path.join(folder, 'wnids.txt')
  if not os.path.isfile(path):
    raise DataError(f'wnids.txt not found in {folder}; {PUT} (La-MAML\'s '
                    'download_tinyimgnet.sh deletes it: unzip again)')
  with open(path, encoding='utf-8') as f:
    wnids = [line.strip() for line in f if line.strip()]
  if not wnids:
    raise DataError(f'{path} lists no wnids; {PUT}')
  if len(set(wnids)) != len(wnids):
    twice = sorted({w for w in wnids if wnids.count(w) > 1})[0]
    raise DataError(f'{path} lists {twice} twice; {PUT}')
  return sorted(wnids)


def _jpegs(folder: str) -> list[str]:
  """The JPEG file names in `folder`, sorted (hidden files skipped)."""
  return sorted(f for f in os.listdir(folder)
                if f.lower().endswith(EXTENSIONS) and not f.startswith('.'))


def train_files(folder: str, wnids: list[str]) -> list[list[str]]:
  """Paths of each class's training JPEGs, in class id order.

  Raises:
    DataError: a class folder that is missing or holds no JPEG.
  """
  files = []
  for wnid in wnids:
    images = os.path.join(folder, 'train', wnid, 'images')
    if not os.path.isdir(images):
      raise DataError(f'class folder train/{wnid}/images not found in '
                      f'{folder}; {PUT}')
    names = _jpegs(images)
    if not names:
      raise DataError(f'{images} holds no JPEG; {PUT}')
    files.append([os.path.join(images, n) for n in names])
  return files


def val_files(folder: str, wnids: list[str]) -> list[list[str]]:
  """Paths of each class's validation JPEGs (the test set), in class id
  order, as val/val_annotations.txt labels them.

  Raises:
    DataError: a missing file or folder, a malformed line, an unknown wnid,
      or an image without a label.
  """
  val = os.path.join(folder, 'val')
  path = os.path.join(val, 'val_annotations.txt')
  images = os.path.join(val, 'images')
  for need in (path, images):
    if not os.path.exists(need):
      raise DataError(f'{os.path.relpath(need, folder)} not found in '
                      f'{folder}; {PUT} (La-MAML\'s val_data_format.py moves '
                      'the val images: unzip again)')
  ids = {w: k for k, w in enumerate(wnids)}
  labels = {}
  with open(path, encoding='utf-8') as f:
    for i, line in enumerate(f, 1):
      if not line.strip():
        continue
      fields = line.rstrip('\r\n').split('\t')
      if len(fields) < 2:
        raise DataError(f'{path} line {i} is not <file>TAB<wnid>...; {PUT}')
      name, wnid = fields[0], fields[1]
      if wnid not in ids:
        raise DataError(f'{path} line {i} labels {name} {wnid}, which is '
                        f'not in wnids.txt; {PUT}')
      if name in labels:
        raise DataError(f'{path} line {i} labels {name} a second time; {PUT}')
      labels[name] = ids[wnid]
  files = [[] for _ in wnids]
  present = set(_jpegs(images))
  for name in sorted(present):
    if name not in labels:
      raise DataError(f'{os.path.join(images, name)} has no line in '
                      f'{path}; {PUT}')
    files[labels[name]].append(os.path.join(images, name))
  for name in sorted(labels):
    if name not in present:
      raise DataError(f'{path} labels {name}, which is not in {images}; '
                      f'{PUT}')
  return files


def read_image(path: str) -> np.ndarray:
  """One JPEG as [64, 64, 3] uint8 RGB (grayscale converted as La-MAML's
  `Image.open(x).convert('RGB')`).

  Raises:
    DataError: the file cannot be decoded or is not 64x64.
  """
  from PIL import Image  # only when decoding: `import emcl_jax` stays light
  try:
    with Image.open(path) as im:
      if im.size != (SIZE, SIZE):
        raise DataError(f'image {path} is {im.size[0]}x{im.size[1]}, not '
                        f'{SIZE}x{SIZE}; replace it from {URL}')
      return np.asarray(im.convert('RGB'), np.uint8)
  except (OSError, SyntaxError, ValueError) as e:
    raise DataError(f'cannot decode image {path} '
                    f'({first_line(e)[:120]}); replace it from '
                    f'{URL}') from None


def _decode(files: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
  """Images [N, 64, 64, 3] uint8 and labels [N] int32 of per-class paths."""
  counts = [len(f) for f in files]
  x = np.empty((sum(counts), SIZE, SIZE, 3), np.uint8)
  for i, path in enumerate(p for f in files for p in f):
    x[i] = read_image(path)
  return x, np.repeat(np.arange(len(files), dtype=np.int32), counts)


def fingerprint(folder: str, wnids: list[str],
                files: list[list[str]]) -> str:
  """A hash of what `read` decodes: the wnids, val_annotations.txt, and each
  JPEG's path, size and modification time, in reading order."""
  h = hashlib.sha256(f'v{CACHE_VERSION}\0{SIZE}\0'.encode())
  h.update('\0'.join(wnids).encode())
  with open(os.path.join(folder, 'val', 'val_annotations.txt'), 'rb') as f:
    h.update(f.read())
  for path in files:
    st = os.stat(path)
    h.update(f'\0{os.path.relpath(path, folder)}\0{st.st_size}\0'
             f'{st.st_mtime_ns}'.encode())
  return h.hexdigest()


def _load_cache(path: str, key: str) -> tuple[np.ndarray, ...] | None:
  """The four arrays of a cache file made for `key`, else None."""
  names = ('train_x', 'train_y', 'test_x', 'test_y')
  try:
    with np.load(path, allow_pickle=False) as z:
      if str(z['key']) != key:
        return None
      arrays = tuple(z[n] for n in names)
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
    return None
  train_x, train_y, test_x, test_y = arrays
  for x, y in ((train_x, train_y), (test_x, test_y)):
    if (x.dtype != np.uint8 or x.shape[1:] != (SIZE, SIZE, 3) or
        y.dtype != np.int32 or y.shape != x.shape[:1]):
      return None
  return arrays


def _write_cache(path: str, key: str, arrays: tuple[np.ndarray, ...]) -> None:
  """Writes the cache atomically (a temporary file, then a rename); a
  folder that cannot take it is left without."""
  tmp = None
  try:
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + '.',
                               suffix='.tmp', dir=os.path.dirname(path))
    with os.fdopen(fd, 'wb') as f:
      np.savez(f, key=np.array(key), **dict(zip(
          ('train_x', 'train_y', 'test_x', 'test_y'), arrays)))
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError:
    if tmp is not None and os.path.exists(tmp):
      os.remove(tmp)


def cache_path(folder: str) -> str:
  """Where `read` keeps the decoded arrays: `<folder>.npz`, beside it."""
  return os.path.abspath(folder) + '.npz'


def read(data_dir: str, *, cache: bool = True) -> mnist.Split:
  """Reads TinyImageNet's labelled images.

  Args:
    data_dir: the `tiny-imagenet-200` folder or its parent.
    cache: use and refresh `cache_path(folder)`: the decoded arrays, kept
      while the hash of the folder's wnids, annotations and JPEG paths,
      sizes and times is unchanged.

  Returns:
    A Split: train_x [N, 64, 64, 3] uint8 and train_y [N] int32 from train/
    (100,000 images), test_x and test_y from val/ (10,000), each grouped by
    class id (the wnid's rank among the sorted wnids), files in name order.

  Raises:
    DataError: a missing wnids.txt, class folder or annotation file, a
      malformed annotation, or a JPEG that cannot be decoded or is not
      64x64.
  """
  folder = find_folder(data_dir)
  wnids = read_wnids(folder)
  train, test = train_files(folder, wnids), val_files(folder, wnids)
  source = f'dir:{folder}'
  if cache:
    key = fingerprint(folder, wnids, [p for f in train + test for p in f])
    arrays = _load_cache(cache_path(folder), key)
    if arrays is not None:
      return mnist.Split(*arrays, source)
  arrays = (*_decode(train), *_decode(test))
  if cache:
    _write_cache(cache_path(folder), key, arrays)
  return mnist.Split(*arrays, source)


def has_files(data_dir: str | None) -> bool:
  """Whether `data_dir` is, or holds, a tiny-imagenet-200 folder."""
  if not data_dir:
    return False
  return any(os.path.isfile(os.path.join(data_dir, *p, 'wnids.txt'))
             for p in ((FOLDER,), ()))


def load(source: str = 'auto', data_dir: str | None = None, *,
         cache: bool = True) -> mnist.Split:
  """TinyImageNet: 'dir' (`data_dir`'s folder), 'download' (the official
  zip, fetched once into the cache folder `data_dir`, else $EMCL_JAX_DATA,
  else ~/.cache/emcl_jax: `download.fetch`), or 'auto' (`data_dir`'s folder
  when it holds one, else 'download').

  Raises:
    DataError: another source, no data_dir for 'dir', data that `read`
      rejects, or a download that fails.
  """
  if source not in SOURCES:
    raise DataError(f'data source {source!r} cannot provide TinyImageNet; '
                    f'use one of {", ".join(SOURCES)}')
  if source == 'dir' or (source == 'auto' and has_files(data_dir)):
    if not data_dir:
      raise DataError(f"data_source='dir' needs data_dir: {PUT}, or use "
                      "data_source='download'")
    return read(data_dir, cache=cache)
  return read(download.fetch(download.TINYIMAGENET, data_dir), cache=cache)
