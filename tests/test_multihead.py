"""Multi-head (class-split benchmarks): labels in task order, masked loss
and evaluation by hand, a one-task CIFAR-100 smoke run on written files."""

import glob
import json
import os

from absl.testing import absltest
import pytest
import jax.numpy as jnp
import numpy as np
import optax

import fixtures
from emcl_jax.training import engine
from emcl_jax import losses
from emcl_jax.base import Batch
from emcl_jax.data import tasks as tasks_lib


def toy_tasks():
  # Task 0 owns classes {1, 3}, task 1 owns {0, 2} (a random class order).
  mask = np.array([[0, 1, 0, 1], [1, 0, 1, 0]], bool)
  return tasks_lib.TaskSet(
      train_x=np.zeros((2, 2, 1), np.float32),
      train_y=np.array([[3, 1], [0, 2]], np.int32),
      test_x=np.zeros((2, 2, 1), np.float32),
      test_y=np.array([[1, 3], [2, 0]], np.int32),
      source='toy', num_classes=4, class_mask=mask)


class MultiHeadTest(absltest.TestCase):

  def test_labels_in_task_order(self):
    t = tasks_lib.task_ordered_labels(toy_tasks())
    # Class order 1, 3, 0, 2 -> labels 0, 1, 2, 3.
    np.testing.assert_array_equal(t.train_y, [[1, 0], [2, 3]])
    np.testing.assert_array_equal(t.test_y, [[0, 1], [3, 2]])
    np.testing.assert_array_equal(t.class_mask,
                                  [[1, 1, 0, 0], [0, 0, 1, 1]])
    single = toy_tasks()._replace(class_mask=None)
    self.assertIs(tasks_lib.task_ordered_labels(single), single)
    with self.assertRaisesRegex(ValueError, 'share classes'):
      tasks_lib.task_ordered_labels(toy_tasks()._replace(
          class_mask=np.ones((2, 4), bool)))

  def test_masked_cross_entropy_by_hand(self):
    logits = jnp.array([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    mask = jnp.array([[1, 1, 0, 0], [0, 0, 1, 1]], bool)
    loss_fn = losses.cross_entropy(lambda p, x: logits, mask)
    batch = Batch(jnp.zeros((2, 1)), jnp.array([1, 2]), jnp.array([0, 1]))
    got = loss_fn(None, batch, jnp.ones(2))
    # Sample 0 (task 0): softmax over logits (1, 2), label 1;
    # sample 1 (task 1): softmax over (3, 4), label 2 (first of the pair).
    expected = 0.5 * (np.log(np.exp(1) + np.exp(2)) - 2
                      + np.log(np.exp(3) + np.exp(4)) - 3)
    self.assertAlmostEqual(float(got), expected, places=5)
    unmasked = losses.cross_entropy(lambda p, x: logits)(None, batch,
                                                         jnp.ones(2))
    self.assertAlmostEqual(
        float(unmasked), float(optax.softmax_cross_entropy_with_integer_labels(
            logits, batch.y).mean()), places=5)

  def test_masked_evaluation(self):
    # A model that always prefers class 3: right only where 3 is allowed.
    apply_fn = lambda p, x: jnp.broadcast_to(  # noqa: E731
        jnp.array([0.0, 1.0, 2.0, 3.0]), (x.shape[0], 4))
    test_x = jnp.zeros((2, 2, 1))
    test_y = jnp.array([[1, 1], [3, 2]])
    masks = jnp.array([[1, 1, 0, 0], [0, 0, 1, 1]], bool)
    evaluate = engine.make_evaluate(apply_fn)
    np.testing.assert_allclose(evaluate(None, test_x, test_y, masks),
                               [1.0, 0.5])  # task 0 picks 1 of {0, 1}
    np.testing.assert_allclose(evaluate(None, test_x, test_y), [0.0, 0.5])

  @pytest.mark.slow
  def test_cifar100_one_task_smoke_run(self):
    folder = fixtures.tmp_dir(self)
    fixtures.write_cifar(folder, n_train=300, n_test=200)  # 3 / 2 a class
    out = os.path.join(folder, 'out')
    proc = fixtures.call(
        'run', '--dataset=cifar100', f'--data_dir={folder}',
        '--config.data.num_tasks=1', '--config.data.samples_per_task=10',
        '--method=finetune', '--config.method.memory_size=0',
        '--config.method.replay_size=0', '--config.protocol.eval=both',
        f'--workdir={out}')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    path, = glob.glob(os.path.join(out, 'cifar100', 'finetune', '*', 'seed0',
                                   'results.json'))
    with open(path) as f:
      res = json.load(f)
    self.assertEqual(res['config']['model'], 'resnet18_reduced')
    self.assertEqual(np.array(res['accuracy_matrix']).shape, (1, 1))
    self.assertTrue(res['data_source'].startswith(f'dir:{folder}'))
    # The run is multi-head: --config.protocol.eval=both is accepted (a single-head
    # benchmark refuses it) and reports both evaluations; after the first
    # task the classes seen so far are exactly that task's, so the
    # class-incremental accuracy equals the task-incremental one.
    self.assertEqual(res['config']['eval'], 'both')
    self.assertEqual(res['accuracy_matrix_class'], res['accuracy_matrix'])

if __name__ == '__main__':
  absltest.main()
