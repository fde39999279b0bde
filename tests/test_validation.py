"""The validation split (`data.validation`): held out of each task's
training samples before the stream is formed, scored like the test sets
after every task, carried into results, checkpoints and tables."""

import os
from unittest import mock

from absl.testing import absltest
import numpy as np

from emcl_jax import configs
from emcl_jax import data as data_lib
from emcl_jax import runner
from emcl_jax.data import tasks as tasks_lib
from emcl_jax.launch import grids
from emcl_jax.reporting import tables
from emcl_jax.reporting import writers
from emcl_jax.runner import build
from emcl_jax.training import engine
from emcl_jax.training import workdir
import fixtures


def numbered(num_tasks=2, n=40, m=12, d=5, seed=0):
  """A benchmark whose every training sample carries its own id in
  feature 0 (task t's ids are t*1000 + 0..n-1); test labels are the
  training rule's opposite, so test and validation accuracies differ."""
  rng = np.random.default_rng(seed)
  train, test = [], []
  for t in range(num_tasks):
    x = rng.normal(size=(n, d)).astype(np.float32)
    x[:, 0] = t * 1000 + np.arange(n)
    y = (x[:, 1] > 0).astype(np.int32)
    xt = rng.normal(size=(m, d)).astype(np.float32)
    train.append((x, y))
    test.append((xt, (xt[:, 1] <= 0).astype(np.int32)))
  return data_lib.from_arrays(train, test, num_classes=2)


def small_config(**overrides):
  config = configs.get_config('mnist_permutations', 'finetune')
  return configs.schema.override(config, {'data.validation': 0.1,
                                          **overrides})


class HoldOutTest(absltest.TestCase):

  def test_held_out_samples_are_a_seeded_disjoint_part_of_each_task(self):
    tasks = numbered(n=40)
    held = tasks_lib.hold_out(tasks, 0.1, seed=3, multiple=10)
    # ceil(0.1 * 40) = 4 held out leaves 36: rounded down to whole batches
    # of 10, 30 train and 10 validate.
    self.assertEqual(held.train_x.shape, (2, 30, 5))
    self.assertEqual(held.val_x.shape, (2, 10, 5))
    for t in range(2):
      train_ids = held.train_x[t, :, 0]
      val_ids = held.val_x[t, :, 0]
      self.assertEmpty(np.intersect1d(train_ids, val_ids))
      np.testing.assert_array_equal(
          np.sort(np.concatenate([train_ids, val_ids])), tasks.train_x[t, :, 0])
      # The stream keeps its order; labels travel with their samples.
      self.assertTrue(np.all(np.diff(train_ids) > 0))
      np.testing.assert_array_equal(held.val_y[t],
                                    (held.val_x[t, :, 1] > 0).astype(int))
    again = tasks_lib.hold_out(tasks, 0.1, seed=3, multiple=10)
    np.testing.assert_array_equal(again.val_x, held.val_x)
    other = tasks_lib.hold_out(tasks, 0.1, seed=4, multiple=10)
    self.assertFalse(np.array_equal(other.val_x, held.val_x))
    self.assertIs(tasks_lib.hold_out(tasks, 0.0, seed=3), tasks)

  def test_bad_fractions_are_one_line(self):
    tasks = numbered(n=20)
    for fraction, words in ((1.0, r'must be in \[0, 1\)'), (-0.1, 'must be'),
                            (0.9, 'leaves no batch of 10')):
      with self.assertRaisesRegex(data_lib.DataError, words):
        tasks_lib.hold_out(tasks, fraction, seed=0, multiple=10)
    with self.assertRaisesRegex(configs.ConfigError, 'data.validation'):
      configs.resolve(small_config(**{'data.validation': 1.5}))

  def test_the_hash_of_a_run_without_validation_is_unchanged(self):
    base = configs.get_config('mnist_permutations', 'emcl')
    self.assertNotIn('validation', configs.flat(configs.resolve(base)))
    self.assertEqual(configs.flat(configs.resolve(small_config()))[
        'validation'], 0.1)


class ValidationRunTest(absltest.TestCase):

  def test_held_out_samples_never_reach_training(self):
    tasks = numbered(n=40)
    seen = []
    real = engine.batched

    def spy(task_set, batch_size):
      seen.append(task_set)
      return real(task_set, batch_size)

    with mock.patch.object(engine, 'batched', spy):
      res, = runner.run(small_config(), tasks=tasks)
    stream, = seen
    self.assertEqual(res['stream_length'], 30)
    self.assertEqual(res['val_samples'], 10)
    for t in range(2):
      trained = stream.train_x[t, :, 0]
      held = stream.val_x[t, :, 0]
      self.assertLen(trained, 30)
      self.assertEmpty(np.intersect1d(trained, held))
      np.testing.assert_array_equal(
          np.sort(np.concatenate([trained, held])), tasks.train_x[t, :, 0])

  def test_validation_rows_score_the_validation_sets(self):
    tasks = tasks_lib.hold_out(numbered(n=40), 0.1, seed=0, multiple=10)
    # Held out above: the config holds out nothing more.
    config = configs.resolve(small_config(**{'data.validation': 0.0}))
    setup = build.setup(config, 0, tasks=tasks)
    result = engine.train_and_evaluate(
        setup.method, setup.apply_fn, setup.params, setup.tasks,
        batch_size=10, key=setup.key)
    params = setup.method.params_of(result.state)
    expect = [np.mean(np.argmax(setup.apply_fn(params, x), -1) == y)
              for x, y in zip(tasks.val_x, tasks.val_y)]
    np.testing.assert_allclose(result.val_accuracy_matrix[-1], expect,
                               atol=1e-6)
    test = [np.mean(np.argmax(setup.apply_fn(params, x), -1) == y)
            for x, y in zip(tasks.test_x, tasks.test_y)]
    np.testing.assert_allclose(result.accuracy_matrix[-1], test, atol=1e-6)
    self.assertFalse(np.allclose(expect, test))

  def test_results_checkpoints_and_seeds_carry_the_validation_matrix(self):
    tmp = fixtures.tmp_dir(self)
    config = small_config(**{'data.num_tasks': 2,
                             'data.samples_per_task': 50})
    res, = runner.run(config, checkpoint_dir=os.path.join(tmp, 'ckpt'))
    r_val = np.array(res['val_accuracy_matrix'])
    self.assertEqual(r_val.shape, (2, 2))
    self.assertEqual(res['stream_length'], 40)
    self.assertAlmostEqual(res['val_acc'], 100 * r_val[-1].mean(), places=4)
    # A finished run resumed from its checkpoint gives its matrices back.
    again, = runner.run(config, checkpoint_dir=os.path.join(tmp, 'ckpt'),
                        resume=True)
    np.testing.assert_array_equal(again['val_accuracy_matrix'], r_val)
    # Two seeds as one vmapped program: seed 0's rows are its solo run's.
    both = runner.run(configs.schema.override(config, {'seeds': 2}))
    np.testing.assert_allclose(both[0]['val_accuracy_matrix'], r_val,
                               atol=1e-6)
    self.assertNotEqual(both[1]['val_acc'], both[0]['val_acc'])

  def test_multi_head_validation_is_scored_over_each_task_s_classes(self):
    config = configs.get_config('split_mnist', 'finetune')
    config = configs.schema.override(config, {
        'data.validation': 0.2, 'data.num_tasks': 2,
        'data.samples_per_task': 50})
    res, = runner.run(config)
    r_val = np.array(res['val_accuracy_matrix'])
    # Two classes a task, masked: a task's validation accuracy right after
    # training it is far above the 50% of a guess on its own two classes.
    self.assertGreater(r_val[0, 0], 0.8)
    self.assertEqual(res['val_samples'], 10)


  def test_a_grid_program_writes_each_setting_s_validation_numbers(self):
    tmp = fixtures.tmp_dir(self)
    base = small_config(**{'data.num_tasks': 2, 'data.samples_per_task': 50})
    grid = [configs.schema.override(base, {'method.lr': lr,
                                           'output.name': f'lr={lr}'})
            for lr in (0.03, 0.1)]
    outcomes = runner.sweep(grid, tmp)
    self.assertEqual(runner.programs(grid), [[0, 1]])  # one program
    solo, = runner.run(grid[1])
    res, = outcomes[1].results
    np.testing.assert_allclose(res['val_accuracy_matrix'],
                               solo['val_accuracy_matrix'], atol=1e-6)
    self.assertNotEqual(outcomes[0].results[0]['val_acc'], res['val_acc'])
    folder = workdir.run_dir(tmp, 'mnist_permutations', 'lr=0.1',
                             res['config_hash'], 0)
    lines = writers.read_json_lines(os.path.join(folder, 'metrics.jsonl'))
    last = lines[-1]
    self.assertAlmostEqual(last['final/val_acc'], res['val_acc'], places=4)
    per_task = [line for line in lines if 'val_acc_this' in line]
    self.assertLen(per_task, 2)
    self.assertAlmostEqual(per_task[-1]['val_acc_seen'], res['val_acc'],
                           places=3)


class RankingTest(absltest.TestCase):

  def test_sweep_table_ranks_by_validation_and_says_so(self):
    def row(name, val, acc):
      return {'setting': name, 'seeds': 2, 'diverged': False,
              'val_acc': (val, 0.5), 'acc': (acc, 1.0), 'bwt': (0.0, 0.0),
              'la': (acc, 0.0), 'train_seconds': 1.0}
    text = grids.table([row('a', 60.0, 90.0), row('b', 70.0, 80.0)], 'cmd')
    self.assertIn('Ranked by validation ACC', text)
    self.assertIn('| setting | seeds | val ACC | ACC |', text)
    self.assertLess(text.index('| b |'), text.index('| a |'))
    plain = grids.table([row('a', np.nan, 90.0), row('b', np.nan, 80.0)],
                        'cmd')
    self.assertIn('Ranked by test ACC', plain)
    self.assertNotIn('val ACC', plain)
    self.assertLess(plain.index('| a |'), plain.index('| b |'))

  def test_summarize_rows_rank_by_validation_within_each_dataset(self):
    def res(dataset, name, seed, val, acc):
      return {'dataset': dataset, 'method': 'emcl', 'name': name,
              'seed': seed, 'acc': acc, 'bwt': 0.0, 'la': acc,
              'val_acc': val, 'train_seconds': 1.0,
              'config': {'n': name}}
    rows = tables.aggregate([
        res('d1', 'a', 0, 50.0, 90.0), res('d1', 'b', 0, 70.0, 60.0),
        res('d2', 'c', 0, 10.0, 10.0), res('d1', 'c', 0, 60.0, 99.0)])
    ranked = tables.ranked(rows, 'val_acc')
    self.assertEqual([(r.dataset, r.name) for r in ranked],
                     [('d1', 'b'), ('d1', 'c'), ('d1', 'a'), ('d2', 'c')])
    old = [r._replace(val_acc=np.nan) for r in rows]
    with self.assertRaisesRegex(ValueError, 'data.validation=0.1'):
      tables.ranked(old, 'val_acc')


if __name__ == '__main__':
  absltest.main()
