"""Split TinyImageNet end to end: every method of its config (La-MAML's
TinyImageNet methods and EMCL) trains two tasks from a written
tiny-imagenet-200 folder of real JPEGs, through `--dataset=tinyimagenet`'s
config (pc_cnn, multi-head, random class order)."""

import os
import shutil
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image
import pytest

from emcl_jax import configs
from emcl_jax import runner

pytestmark = pytest.mark.slow  # whole-protocol runs of a CNN

WNIDS = [f'n{i:08d}' for i in range(200)]


def write_folder(parent, train_per_class=2, val_per_class=1):
  """A tiny-imagenet-200 folder with every one of the 200 classes (class k
  an image of brightness k), as the official zip lays it out."""
  folder = os.path.join(parent, 'tiny-imagenet-200')
  os.makedirs(folder)
  with open(os.path.join(folder, 'wnids.txt'), 'w') as f:
    f.write(''.join(w + '\n' for w in WNIDS[::-1]))
  val = os.path.join(folder, 'val', 'images')
  os.makedirs(val)
  lines = []
  for k, wnid in enumerate(WNIDS):
    images = os.path.join(folder, 'train', wnid, 'images')
    os.makedirs(images)
    img = np.full((64, 64, 3), k, np.uint8)
    for i in range(train_per_class):
      Image.fromarray(img).save(os.path.join(images, f'{wnid}_{i}.JPEG'))
    for i in range(val_per_class):
      name = f'val_{k * val_per_class + i}.JPEG'
      Image.fromarray(img).save(os.path.join(val, name))
      lines.append(f'{name}\t{wnid}\t0\t0\t63\t63\n')
  with open(os.path.join(folder, 'val', 'val_annotations.txt'), 'w') as f:
    f.write(''.join(lines))
  return folder


class TinyImageNetRunsTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.root = tempfile.mkdtemp()
    write_folder(cls.root)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.root, True)
    super().tearDownClass()

  @parameterized.parameters('emcl', 'lamaml', 'cmaml', 'er', 'mer', 'gem',
                            'agem')
  def test_two_tasks(self, method):
    # One batch a task, one glance, two replay samples: a gradient of the CNN
    # inside a compiled loop is slow on XLA's CPU backend (docs/speed.md),
    # and these methods take dozens a batch at the script's sizes. The rest
    # of each method's TinyImageNet config is as shipped.
    values = {'data.dir': self.root, 'data.num_tasks': 2,
              'data.samples_per_task': 10, 'output.progress': False}
    fields = configs.get_config('tinyimagenet', method).method.params._fields
    for name, small in (('glances', 1), ('replay_size', 2),
                        ('batches_per_example', 1), ('memory_per_task', 2),
                        ('max_tasks', 2)):
      if name in fields:
        values[f'method.{name}'] = small
    if method in ('lamaml', 'cmaml'):
      # One CNN gradient per sample and one per inner step on the meta-batch:
      # two batches of 2 samples a task.
      values.update({'data.samples_per_task': 4, 'protocol.batch_size': 2})
    config = configs.get_config('tinyimagenet', method, values)
    self.assertEqual((config.model.name, config.data.class_order),
                     ('pc_cnn', 'random'))
    [res] = runner.run(config)
    r = np.array(res['accuracy_matrix'])
    self.assertEqual(r.shape, (2, 2))
    self.assertTrue(np.isfinite(res['task_losses']).all())
    # 5 test images a task, multi-head over its 5 classes.
    self.assertTrue(np.isin(np.round(r * 5, 6), np.arange(6)).all(), r)
    self.assertEqual(res['data_source'],
                     f"dir:{os.path.join(self.root, 'tiny-imagenet-200')}")


if __name__ == '__main__':
  absltest.main()
