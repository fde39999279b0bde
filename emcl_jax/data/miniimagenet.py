"""miniImageNet: 100 ImageNet classes, 600 images each, 84x84x3.

There is no bundled copy and no TFDS dataset; `data_dir` holds either

A. the pickles `mini-imagenet-cache-train.pkl`, `-val.pkl` and `-test.pkl`
   (dicts with 'image_data' [N, 84, 84, 3] uint8 and 'class_dict'
   {class_name: [indices into image_data]}); the three files' 64 + 16 + 20
   classes are merged into one set of 100; or
B. one folder of images per class, `data_dir/<class_name>/*.jpg|jpeg|png`
   (or `data_dir/{train,val,test}/<class_name>/...`, merged), decoded with
   PIL as RGB and resized to 84x84 (Lanczos) where they differ.

Class ids are the class names sorted (e.g. WordNet ids n01532829, ...), the
same for both layouts. A class's images are taken in a fixed order, the
order of its 'class_dict' list (A) or its file names sorted (B): the first
500 are its training images, the next 100 its test images (further images
are ignored). CIFAR-style 20 tasks x 5 classes then give 2,500 training and
500 test images per task.
"""

import os

import numpy as np

from emcl_jax.data import mnist
from emcl_jax.data import pickles
from emcl_jax.errors import DataError, first_line

SOURCES = ('auto', 'dir')
SPLITS = ('train', 'val', 'test')
PICKLES = tuple(f'mini-imagenet-cache-{s}.pkl' for s in SPLITS)
EXTENSIONS = ('.jpg', '.jpeg', '.png')
SIZE = 84
PUT = ('put mini-imagenet-cache-train.pkl, mini-imagenet-cache-val.pkl and '
       'mini-imagenet-cache-test.pkl (not a public download: learn2learn\'s '
       "MiniImagenet(root, mode, download=True) fetches these pickles, from "
       'the Google Drive files of Ren et al. 2018, '
       'github.com/renmengye/few-shot-ssl-public), or one folder of images '
       'per class (DIR/<class_name>/*.jpg), in data_dir=DIR')


def read_pickles(data_dir: str, *, train_per_class: int = 500,
                 test_per_class: int = 100,
                 num_classes: int = 100) -> mnist.Split:
  """Reads layout A, the three `mini-imagenet-cache-*.pkl` files.

  Args:
    data_dir: the folder holding them.
    train_per_class: a class's first images that go to training.
    test_per_class: the next images, its test set.
    num_classes: classes expected over the three files.

  Returns:
    A Split with images [N, 84, 84, 3] uint8 and labels [N] int32 (the
    class's rank among the sorted class names), grouped by class.

  Raises:
    DataError: a missing, truncated or corrupt file, wrong shapes, indices
      out of range, a class in two files, the wrong number of classes, or a
      class with too few images.
  """
  classes = {}  # name -> (images [N, 84, 84, 3], indices)
  for name in PICKLES:
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
      raise DataError(f'{name} not found in {data_dir}; {PUT}')
    fix = f're-download it ({PUT})'
    obj = pickles.loads(pickles.read_bytes(path, PUT), path, fix)
    images, class_dict = _check_cache(obj, path, fix)
    for cls, indices in class_dict.items():
      if cls in classes:
        raise DataError(f'class {cls} appears twice, again in {path}; use '
                        'the original train/val/test pickles')
      classes[cls] = (images, indices)
  _check_counts({c: len(i) for c, (_, i) in classes.items()}, data_dir,
                train_per_class, test_per_class, num_classes)
  names = sorted(classes)
  def gather(start, stop):
    xs = [classes[c][0][classes[c][1][start:stop]] for c in names]
    return np.concatenate(xs), np.repeat(np.arange(len(names), dtype=np.int32),
                                         stop - start)
  per_class = train_per_class + test_per_class
  return mnist.Split(*gather(0, train_per_class),
                     *gather(train_per_class, per_class),
                     f'dir:{os.path.abspath(data_dir)}:pickles')


def _check_cache(obj, path: str, fix: str):
  """The image array and {class name: index array} of one cache pickle."""
  if not isinstance(obj, dict):
    raise DataError(f'{path} holds a {type(obj).__name__}, not the dict of a '
                    f'miniImageNet cache; {fix}')
  obj = pickles.str_keys(obj)
  if 'image_data' not in obj or 'class_dict' not in obj:
    raise DataError(f'{path} lacks the keys image_data and class_dict: not a '
                    f'miniImageNet cache; {fix}')
  images = obj['image_data']
  if (not isinstance(images, np.ndarray) or images.dtype != np.uint8 or
      images.shape[1:] != (SIZE, SIZE, 3) or images.ndim != 4):
    shape = getattr(images, 'shape', type(images).__name__)
    dtype = getattr(images, 'dtype', '')
    raise DataError(f'{path} has image_data {shape} {dtype}, not '
                    f'[N, {SIZE}, {SIZE}, 3] uint8; {fix}')
  if not isinstance(obj['class_dict'], dict):
    raise DataError(f'{path} has a class_dict that is not a dict; {fix}')
  class_dict = {}
  for cls, indices in obj['class_dict'].items():
    cls = cls.decode() if isinstance(cls, bytes) else str(cls)
    indices = np.asarray(indices)
    if indices.ndim != 1 or (indices.size and not np.issubdtype(
        indices.dtype, np.integer)):
      raise DataError(f'{path}: class {cls} has indices of shape '
                      f'{indices.shape} and dtype {indices.dtype}, not a '
                      f'list of integers; {fix}')
    if indices.size and (indices.min() < 0 or
                         indices.max() >= images.shape[0]):
      raise DataError(f'{path}: class {cls} indexes images {indices.min()}..'
                      f'{indices.max()} of {images.shape[0]}; {fix}')
    class_dict[cls] = indices.astype(np.int64)
  return images, class_dict


def _check_counts(counts: dict[str, int], data_dir: str, train_per_class: int,
                  test_per_class: int, num_classes: int) -> None:
  """Raises a DataError unless there are num_classes classes, each with
  enough images."""
  if len(counts) != num_classes:
    raise DataError(f'found {len(counts)} classes in {data_dir}, expected '
                    f'{num_classes}; {PUT}')
  need = train_per_class + test_per_class
  for cls in sorted(counts):
    if counts[cls] < need:
      raise DataError(f'class {cls} in {data_dir} has {counts[cls]} images, '
                      f'fewer than the {need} needed ({train_per_class} train'
                      f' + {test_per_class} test); re-download miniImageNet')


def class_folders(data_dir: str) -> dict[str, str]:
  """{class name: folder} of layout B: the subfolders of data_dir, or of its
  train/val/test subfolders when it has them. Names starting with '.' or
  '_' are skipped.

  Raises:
    DataError: a class name in two split folders.
  """
  def subdirs(folder):
    return sorted(d for d in os.listdir(folder)
                  if os.path.isdir(os.path.join(folder, d))
                  and not d.startswith(('.', '_')))
  top = subdirs(data_dir)
  roots = [os.path.join(data_dir, s) for s in SPLITS if s in top] or [data_dir]
  folders = {}
  for root in roots:
    for cls in subdirs(root):
      if cls in folders:
        raise DataError(f'class {cls} is in both {folders[cls]} and {root}; '
                        'keep one folder per class')
      folders[cls] = os.path.join(root, cls)
  return folders


def read_image(path: str) -> np.ndarray:
  """One image as [84, 84, 3] uint8 RGB (resized with Lanczos if needed).

  Raises:
    DataError: the file cannot be decoded.
  """
  from PIL import Image  # only for image folders: `import emcl_jax` stays light
  try:
    with Image.open(path) as im:
      im = im.convert('RGB')
      if im.size != (SIZE, SIZE):
        im = im.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
      return np.asarray(im, np.uint8)
  except (OSError, SyntaxError, ValueError) as e:
    raise DataError(f'cannot decode image {path} '
                    f'({first_line(e)[:120]}); replace or delete '
                    'it') from None


def read_folders(data_dir: str, *, train_per_class: int = 500,
                 test_per_class: int = 100,
                 num_classes: int = 100) -> mnist.Split:
  """Reads layout B, one folder of images per class.

  Args: as `read_pickles`.

  Returns:
    A Split with images [N, 84, 84, 3] uint8 and labels [N] int32, grouped
    by class (sorted class names), each class's files in name order.

  Raises:
    DataError: the wrong number of classes, a class with too few images, or
      an image that cannot be decoded.
  """
  folders = class_folders(data_dir)
  files = {cls: sorted(f for f in os.listdir(folder)
                       if f.lower().endswith(EXTENSIONS))
           for cls, folder in folders.items()}
  _check_counts({c: len(f) for c, f in files.items()}, data_dir,
                train_per_class, test_per_class, num_classes)
  names = sorted(files)
  def gather(start, stop):
    xs = [read_image(os.path.join(folders[c], f))
          for c in names for f in files[c][start:stop]]
    return (np.stack(xs).reshape(-1, SIZE, SIZE, 3),
            np.repeat(np.arange(len(names), dtype=np.int32), stop - start))
  per_class = train_per_class + test_per_class
  return mnist.Split(*gather(0, train_per_class),
                     *gather(train_per_class, per_class),
                     f'dir:{os.path.abspath(data_dir)}:folders')


def read_dir(data_dir: str, **counts) -> mnist.Split:
  """Layout A if any cache pickle is in `data_dir`, else layout B.

  Args:
    data_dir: the folder.
    **counts: train_per_class, test_per_class, num_classes (see
      `read_pickles`).

  Raises:
    DataError: no data, or data that `read_pickles`/`read_folders` reject.
  """
  if not os.path.isdir(data_dir):
    raise DataError(f'data_dir={data_dir!r} is not a directory; {PUT}')
  if any(os.path.isfile(os.path.join(data_dir, p)) for p in PICKLES):
    return read_pickles(data_dir, **counts)
  if not class_folders(data_dir):
    raise DataError(f'no miniImageNet in {data_dir}: {PUT}')
  return read_folders(data_dir, **counts)


def load(source: str = 'auto', data_dir: str | None = None,
         **counts) -> mnist.Split:
  """miniImageNet from `data_dir` (the only source).

  Raises:
    DataError: a source other than 'auto'/'dir', no data_dir, or data that
      `read_dir` rejects.
  """
  if source not in SOURCES:
    raise DataError(f'data source {source!r} cannot provide miniImageNet '
                    f'(no bundled copy, no TFDS dataset); {PUT}')
  if not data_dir:
    raise DataError('miniImageNet is not bundled and TFDS has no '
                    f'miniImageNet: {PUT}')
  return read_dir(data_dir, **counts)
