"""The vision path learns: a test-sized image benchmark in CIFAR-100's own
file format (cifar-100-python/train and test pickles), read by the
CIFAR-100 reader, trained by EMCL with the reduced ResNet-18, multi-head.

Class c's images are one of five patterns, c % 5, plus noise, so the five
classes of a task are easy to tell apart, while classes of different tasks
share their patterns: only the task's head (its class mask) keeps class 0
and class 5 apart. Each task is then learned well above the 20% chance of its
5-way head, and stays so; a broken inner step (no learning) or head mask
(tasks answer with each other's classes) does not."""

import os
import pickle

from absl.testing import absltest
import numpy as np
import pytest

import fixtures
from emcl_jax import configs
from emcl_jax import runner

pytestmark = pytest.mark.slow  # a whole protocol of a ResNet on the CPU

TASKS, PER_CLASS_TRAIN, PER_CLASS_TEST = 2, 10, 10


# Pattern k: a bright 16x16 square at one of five places (the four
# quadrants and the centre) on a dark image.
CORNERS = ((0, 0), (0, 16), (16, 0), (16, 16), (8, 8))


def _batch(per_class, rng):
  """A CIFAR-100 pickle's dict: every class of the first TASKS tasks
  `per_class` times, the other classes once; rows 3x32x32, channel-major."""
  labels = [c for c in range(100)
            for _ in range(per_class if c < 5 * TASKS else 1)]
  images = rng.normal(40, 25, (len(labels), 32, 32, 3))
  for i, c in enumerate(labels):
    top, left = CORNERS[c % 5]
    images[i, top:top + 16, left:left + 16] += 160
  images = np.clip(images, 0, 255).astype(np.uint8)
  return {b'data': images.transpose(0, 3, 1, 2).reshape(len(labels), -1),
          b'fine_labels': labels, b'coarse_labels': [0] * len(labels)}


def write_cifar(folder):
  sub = os.path.join(folder, 'cifar-100-python')
  os.makedirs(sub)
  rng = np.random.default_rng(0)
  for name, per_class in (('train', PER_CLASS_TRAIN),
                          ('test', PER_CLASS_TEST)):
    with open(os.path.join(sub, name), 'wb') as f:
      pickle.dump(_batch(per_class, rng), f, protocol=2)


class LearnableImagesTest(absltest.TestCase):

  def test_emcl_resnet_learns_every_task(self):
    folder = fixtures.tmp_dir(self)
    write_cifar(folder)
    # CIFAR-100's EMCL (Table II) with 3 glances and no replay memory: a
    # short run on the CPU (each glance is one inner step per sample).
    config = configs.get_config('cifar100', 'emcl', {
        'data.dir': folder, 'data.num_tasks': TASKS,
        'data.samples_per_task': 5 * PER_CLASS_TRAIN, 'method.glances': 3,
        'method.memory_size': 0, 'output.progress': False})
    self.assertEqual(config.model.name, 'resnet18_reduced')
    [res] = runner.run(config)
    r = np.array(res['accuracy_matrix'])
    self.assertEqual(r.shape, (TASKS, TASKS))
    # Each task just after training it, and every task at the end: far
    # above the 5-way chance of 0.2.
    self.assertGreater(np.diag(r).min(), 0.8, r)
    self.assertGreater(r[-1].min(), 0.8, r)


if __name__ == '__main__':
  absltest.main()
