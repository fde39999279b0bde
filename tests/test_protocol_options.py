"""Beyond the paper's protocol: class-incremental evaluation, several epochs
per task, your own arrays as a benchmark, and the metrics' columns."""

from absl.testing import absltest
import pytest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import fixtures
import runs
from emcl_jax import data
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.reporting import tables
from emcl_jax.reporting import writers
from emcl_jax.training import engine

SPLIT = {'data.num_tasks': 3, 'data.samples_per_task': 60}


class ClassIncrementalTest(absltest.TestCase):

  def test_masks_by_hand(self):
    masks = np.array([[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0],
                      [0, 0, 0, 0, 1, 1]], bool)
    after_1 = engine.class_incremental_masks(masks, 1)
    np.testing.assert_array_equal(after_1, [[1, 1, 1, 1, 0, 0]] * 3)
    np.testing.assert_array_equal(engine.class_incremental_masks(masks, 2),
                                  np.ones((3, 6), bool))

  @pytest.mark.slow
  def test_both_matrices_and_an_independent_last_row(self):
    both = runs.run('split_mnist', 'finetune', 0,
                    {**SPLIT, 'protocol.eval': 'both'})
    task = runs.run('split_mnist', 'finetune', 0, SPLIT)
    klass = runs.run('split_mnist', 'finetune', 0,
                     {**SPLIT, 'protocol.eval': 'class'})
    self.assertEqual(both['accuracy_matrix'], task['accuracy_matrix'])
    self.assertEqual(both['accuracy_matrix_class'], klass['accuracy_matrix'])
    self.assertEqual(both['acc_class'], klass['acc'])
    self.assertEqual(both['config']['eval'], 'both')
    # The last row again, from the trained parameters: logits over every
    # class of the three tasks, argmax, against the labels.
    s = runs.setup('split_mnist', 'finetune', 0, SPLIT)
    result = engine.train_and_evaluate(s.method, s.apply_fn, s.params,
                                       s.tasks, batch_size=10, key=s.key)
    params = s.method.params_of(result.state)
    seen = s.tasks.class_mask.any(axis=0)
    row = []
    for x, y in zip(s.tasks.test_x, s.tasks.test_y):
      logits = np.array(s.apply_fn(params, jnp.asarray(x)))
      logits[:, ~seen] = -np.inf
      row.append(np.mean(logits.argmax(-1) == y))
    np.testing.assert_allclose(both['accuracy_matrix_class'][-1], row,
                               atol=1e-6)
    # Class-incremental is the harder setting for fine-tuning.
    self.assertLess(both['acc_class'], both['acc'])

  def test_single_head_refuses_class_eval(self):
    with self.assertRaisesRegex(ValueError, 'protocol.eval=class applies to the '
                                'class-split benchmarks'):
      runs.run('mnist_permutations', 'finetune', 0, {
          'protocol.eval': 'class', 'data.num_tasks': 2,
          'data.samples_per_task': 20})

  def test_task_scalars_of_a_class_row(self):
    record = engine.TaskRecord(1, 3, np.asarray(0.5),
                               np.asarray([0.9, 0.8, 0.1]), 1.0, 0.5,
                               np.asarray([0.2, 0.6, 0.0]))
    self.assertAlmostEqual(writers.task_scalars(record)['acc_seen_class'],
                           40.0)


class EpochsTest(absltest.TestCase):

  def test_repeat_epochs_by_hand(self):
    tasks = data.load('mnist_permutations', num_tasks=2, samples_per_task=20,
                      seed=0)
    three = tasks_lib.repeat_epochs(tasks, 3, seed=0)
    self.assertEqual(three.train_x.shape, (2, 60, 784))
    for t in range(2):
      # Epoch 0 in the stream's order; epochs 1, 2: the same samples,
      # reshuffled.
      np.testing.assert_array_equal(three.train_y[t, :20], tasks.train_y[t])
      np.testing.assert_array_equal(three.train_x[t, :20], tasks.train_x[t])
      for e in (1, 2):
        block = three.train_x[t, 20 * e:20 * (e + 1)]
        self.assertFalse(np.array_equal(block, tasks.train_x[t]))
        self.assertCountEqual([r.tobytes() for r in block],
                              [r.tobytes() for r in tasks.train_x[t]])
    self.assertIs(tasks_lib.repeat_epochs(tasks, 1, seed=0), tasks)

  @pytest.mark.slow
  def test_memory_takes_the_first_epoch_only(self):
    small = {'data.num_tasks': 2, 'data.samples_per_task': 40,
             'method.glances': 1}
    s = runs.setup('mnist_permutations', 'emcl', 0,
                   {**small, 'protocol.epochs': 3})
    result = engine.train_and_evaluate(s.method, s.apply_fn, s.params,
                                       s.tasks, batch_size=10, key=s.key,
                                       epochs=3)
    # 2 tasks x 3 epochs x 4 batches meta-updates, but the reservoir saw
    # each of the 80 samples once.
    self.assertEqual(int(result.state.step), 24)
    self.assertEqual(int(result.state.memory.seen), 80)
    one = runs.setup('mnist_permutations', 'emcl', 0, small)
    single = engine.train_and_evaluate(one.method, one.apply_fn, one.params,
                                       one.tasks, batch_size=10, key=one.key)
    # The first epoch fills the memory as a single-epoch run does.
    np.testing.assert_array_equal(
        np.asarray(single.state.memory.seen), 80)

  def test_keep_memory_by_hand(self):
    from emcl_jax.methods import memory as memory_lib
    old = {'m': memory_lib.MemoryState(jnp.zeros(2), jnp.zeros(2, int),
                                       jnp.zeros(2, int), jnp.int32(0)),
           'w': jnp.zeros(2)}
    new = jax.tree.map(lambda a: a + 1, old)
    kept = engine.keep_memory(new, old, jnp.bool_(False))
    np.testing.assert_array_equal(kept['w'], [1, 1])  # the model trains
    self.assertEqual(int(kept['m'].seen), 0)  # the memory does not change
    taken = engine.keep_memory(new, old, jnp.bool_(True))
    self.assertEqual(int(taken['m'].seen), 1)


class FromArraysTest(parameterized.TestCase):

  def _task(self, rng, labels, n=20):
    return (rng.random((n, 6), np.float32),
            rng.choice(np.asarray(labels), n).astype(np.int64))

  def test_builds_a_multi_head_taskset(self):
    rng = np.random.default_rng(0)
    train = [self._task(rng, [0, 1]), self._task(rng, [2, 3])]
    test = [self._task(rng, [0, 1], 8), self._task(rng, [2, 3], 8)]
    ts = data.from_arrays(train, test, multi_head=True)
    self.assertEqual(ts.train_x.shape, (2, 20, 6))
    self.assertEqual(ts.num_classes, 4)
    np.testing.assert_array_equal(ts.class_mask, [[1, 1, 0, 0],
                                                  [0, 0, 1, 1]])
    np.testing.assert_array_equal(ts.train_y[1], train[1][1])
    self.assertEqual(ts.train_y.dtype, np.int32)

  @parameterized.named_parameters(
      ('counts', lambda t, s: (t, s[:1]), 'train has 2 tasks and test 1'),
      ('pair', lambda t, s: ([t[0], t[1][0]], s), r'train\[1\] must be a '
       'pair'),
      ('lengths', lambda t, s: ([t[0], (t[1][0][:5], t[1][1][:6])], s),
       r'train\[1\]: x has 5 samples'),
      ('shapes', lambda t, s: ([t[0], (t[1][0][:, :5], t[1][1])], s),
       r'samples of shape \(5,\)'),
      ('dtype', lambda t, s: ([(t[0][0].astype(np.int64), t[0][1]), t[1]],
                              s), 'x must be uint8 or floating'),
      ('labels', lambda t, s: ([t[0], (t[1][0], t[1][1] - 10)], s),
       r'labels must be in 0\.\.'),
      ('float_labels', lambda t, s: ([(t[0][0], t[0][1] * 1.0), t[1]], s),
       'y must be a 1-D array of integer labels'),
      ('ragged', lambda t, s: ([t[0], (t[1][0][:10], t[1][1][:10])], s),
       r'train tasks have \[10, 20\] samples'),
      ('nan', lambda t, s: ([(t[0][0] * np.nan, t[0][1]), t[1]], s),
       'NaN or infinite'),
  )
  def test_one_clear_error_each(self, change, message):
    rng = np.random.default_rng(1)
    train = [self._task(rng, [0, 1]), self._task(rng, [2, 3])]
    test = [self._task(rng, [0, 1], 8), self._task(rng, [2, 3], 8)]
    with self.assertRaisesRegex(data.DataError, message):
      data.from_arrays(*change(train, test))

  def test_multi_head_refuses_shared_classes(self):
    rng = np.random.default_rng(2)
    train = [self._task(rng, [0, 1]), self._task(rng, [1, 2])]
    with self.assertRaisesRegex(data.DataError, 'tasks share classes'):
      data.from_arrays(train, train, multi_head=True)


class ColumnsTest(absltest.TestCase):

  def test_columns_are_the_json_means(self):
    results = [dict(dataset='d', method='m', name='m', seed=s, acc=a, bwt=b,
                    la=70.0, fwt=f, forgetting=g, train_seconds=1.0,
                    config={'x': 1})
               for s, (a, b, f, g) in enumerate([(60, -2, 1, 4),
                                                 (62, -4, 3, 6)])]
    table = tables.markdown(tables.aggregate(results),
                            ['acc', 'fwt', 'forgetting'])
    self.assertEqual(table.splitlines()[2], '| d | m | 61.00 ± 1.00 | '
                     '2.00 ± 1.00 | 5.00 ± 1.00 | 1.00 | 2 |')
    with self.assertRaisesRegex(ValueError, "unknown column 'fwd'"):
      tables.markdown(tables.aggregate(results), ['fwd'])

  @pytest.mark.slow
  def test_run_py_flags(self):
    for args, message in ((['--config.protocol.epochs=0'], 'protocol.epochs must be a positive'),
                          (['--config.protocol.eval=class'], 'protocol.eval=class applies to the '
                           'class-split benchmarks')):
      proc = fixtures.call(
          'run', '--config.data.num_tasks=2',
          '--config.data.samples_per_task=20',
          f'--workdir={fixtures.tmp_dir(self)}', *args)
      self.assertEqual(proc.returncode, 2, proc.stderr)
      lines = proc.stderr.strip().splitlines()
      self.assertLen(lines, 1)
      self.assertIn(message, lines[0])


if __name__ == '__main__':
  absltest.main()
