"""The results tables: numbers against hand-computed and numpy means/stds."""

import json
import os
import re

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

import fixtures
from emcl_jax.reporting import tables


def _result(name, seed, acc, bwt, la=80.0, seconds=1.0, method=None):
  return {'dataset': 'mnist_permutations', 'method': method or name,
          'name': name, 'seed': seed, 'acc': acc, 'bwt': bwt, 'la': la,
          'train_seconds': seconds}


def _synthetic(datasets=('mnist_permutations', 'cifar100'),
               names=('emcl', 'lamaml', 'emcl_si'), seeds=(0, 1), tasks=4):
  """Results dicts with random lower-triangular accuracy matrices whose
  acc / bwt / la are computed from the matrix, as emcl_jax/runner/results.py does."""
  rng = np.random.default_rng(0)
  out = []
  for d in datasets:
    for n in names:
      for s in seeds:
        r = np.tril(rng.uniform(0.3, 1.0, (tasks, tasks)))
        last, diag = r[-1], np.diag(r)
        out.append({
            'dataset': d, 'method': n, 'name': n, 'seed': s,
            'accuracy_matrix': r.tolist(),
            'acc': float(100 * last.mean()),
            'bwt': float(100 * (last[:-1] - diag[:-1]).mean()),
            'la': float(100 * diag.mean()),
            'train_seconds': float(rng.uniform(1, 100)),
            'task_losses': rng.uniform(0, 2, tasks).tolist()})
  return out


def _write(folder, results):
  for i, r in enumerate(results):
    with open(os.path.join(folder, f'{i:03d}.json'), 'w') as f:
      json.dump(r, f)


def _table_rows(markdown):
  """The body rows of the (only) Markdown table: lists of stripped cells."""
  lines = [l for l in markdown.splitlines() if l.startswith('|')]
  return [[c.strip() for c in l.strip('|').split('|')] for l in lines[2:]]


def _pm(cell):
  """'71.00 ± 1.00' (optionally in **bold**) -> (71.0, 1.0)."""
  m = re.fullmatch(r'\**(-?\d+\.\d\d) ± (\d+\.\d\d)\**', cell.strip())
  assert m, cell
  return float(m[1]), float(m[2])


def _expected(results, dataset, name, key):
  vals = np.array([r[key] for r in results
                   if r['dataset'] == dataset and r['name'] == name])
  return vals.mean(), vals.std()


class ReportTest(parameterized.TestCase):

  def test_aggregate_and_markdown(self):
    folder = fixtures.tmp_dir(self)
    runs = [_result('emcl', 0, 70.0, -10.0, seconds=2.0),
            _result('emcl', 1, 72.0, -12.0, seconds=4.0),
            _result('emcl_gd', 0, 60.0, -20.0, method='emcl')]
    for i, r in enumerate(runs):
      with open(os.path.join(folder, f'{i}.json'), 'w') as f:
        json.dump(r, f)
    rows = tables.aggregate(tables.load(folder))
    self.assertEqual([r.name for r in rows], ['emcl', 'emcl_gd'])
    emcl = rows[0]
    # mean(70, 72) = 71, population std = 1; BWT -11 +- 1; seconds 3.
    self.assertEqual((emcl.acc, emcl.acc_std, emcl.bwt, emcl.bwt_std),
                     (71.0, 1.0, -11.0, 1.0))
    self.assertEqual((emcl.seeds, emcl.train_seconds), ((0, 1), 3.0))
    # seconds 2 and 4: population std 1.
    self.assertEqual(emcl.train_seconds_std, 1.0)
    table = tables.markdown(rows).splitlines()
    self.assertEqual(table[2], '| mnist_permutations | emcl | 71.00 ± 1.00 | '
                     '-11.00 ± 1.00 | 80.00 | 3.00 | 2 |')
    self.assertLen(table, 4)

  def test_shrunk_rows_and_seeds_trained_together_are_marked(self):
    def res(seed, config, **extra):
      return {'dataset': 'mnist_permutations', 'method': 'emcl',
              'name': 'emcl', 'seed': seed, 'acc': 70.0, 'bwt': -5.0,
              'la': 75.0, 'train_seconds': 10.0, 'config': config, **extra}
    full = {'num_tasks': 20, 'samples_per_task': 1000}
    small = {'num_tasks': 3, 'samples_per_task': 200}
    rows = tables.aggregate([res(0, full), res(1, small, parallel_seeds=2)])
    self.assertEqual([r.size for r in rows], ['', '3 tasks x 200'])
    text = tables.markdown(rows)
    self.assertRegex(text, r'\| mnist_permutations \| emcl \[\w+\] \| 70.00')
    self.assertRegex(text, r'\| emcl \[\w+\] \(shrunk: 3 tasks x 200\) \|')
    self.assertIn('| 10.00 (all 2 seeds) |', text)
    grid = tables.aggregate([res(0, full, parallel_seeds=5,
                                 grid_settings=4)])
    self.assertEqual(tables.seconds_cell(grid[0]),
                     '10.00 (4 settings x 5 seeds)')
    self.assertEqual(tables.dataset_title(rows[:1], 'mnist_permutations'),
                     'MNIST Permutations')
    self.assertEqual(tables.dataset_title(rows, 'mnist_permutations'),
                     'MNIST Permutations (shrunk: 3 tasks x 200)')
    self.assertIn('mnist_permutations (shrunk: 3 tasks x 200) ACC / BWT',
                  tables.table_iii(rows[1:]))
    # Split MNIST's default is all of a task's images; a results file of an
    # older version (no size) counts as the default size.
    self.assertEqual(tables.size_note('split_mnist', {
        'num_tasks': 5, 'samples_per_task': None}), '')
    self.assertEqual(tables.size_note('split_mnist', {}), '')
    self.assertEqual(tables.size_note('cifar100', {
        'num_tasks': 20, 'samples_per_task': 100}), '20 tasks x 100')

  def test_row_positional_without_seconds_std(self):
    row = tables.Row('d', 'n', (0,), 1.0, 0.0, -1.0, 0.0, 2.0, 3.0)
    self.assertEqual(row.train_seconds_std, 0.0)

  def test_table_iii_equals_json_means(self):
    results = _synthetic()
    folder = fixtures.tmp_dir(self)
    _write(folder, results)
    loaded = tables.load(folder)
    rows = tables.aggregate(loaded)
    datasets = ['cifar100', 'mnist_permutations']
    text = tables.table_iii(rows, datasets)
    self.assertStartsWith(text, 'Table III:')
    header = [l for l in text.splitlines() if l.startswith('|')][0]
    self.assertEqual(header, '| method | cifar100 ACC / BWT (%) | cifar100 '
                     'train s | mnist_permutations ACC / BWT (%) | '
                     'mnist_permutations train s |')
    body = _table_rows(text)
    self.assertEqual([r[0] for r in body], ['emcl', 'lamaml', 'emcl_si'])
    for cells in body:
      name = cells[0]
      for k, d in enumerate(datasets):
        acc_cell, bwt_cell = cells[1 + 2 * k].split(' / ')
        for cell, key in ((acc_cell, 'acc'), (bwt_cell, 'bwt')):
          got = _pm(cell)
          np.testing.assert_allclose(
              got, _expected(results, d, name, key), atol=0.005 + 1e-9)
        np.testing.assert_allclose(
            float(cells[2 + 2 * k]),
            _expected(results, d, name, 'train_seconds')[0], atol=0.005)
    # Exactly one bold ACC per dataset, on the highest mean.
    for k, d in enumerate(datasets):
      bold = [c[0] for c in body if c[1 + 2 * k].startswith('**')]
      best = max(('emcl', 'lamaml', 'emcl_si'),
                 key=lambda n: _expected(results, d, n, 'acc')[0])
      self.assertEqual(bold, [best])

  def test_table_iii_missing_cells_and_names(self):
    results = _synthetic(datasets=('mnist_permutations',))
    results += _synthetic(datasets=('cifar100',), names=('emcl',))
    rows = tables.aggregate(results)
    body = _table_rows(tables.table_iii(rows, names=['lamaml', 'emcl']))
    self.assertEqual([r[0] for r in body], ['lamaml', 'emcl'])
    self.assertEqual(body[0][3:], ['-', '-'])  # no lamaml on cifar100
    self.assertNotIn('-', body[1][3:])
    with self.assertRaisesRegex(ValueError, 'no results'):
      tables.table_iii(rows, ['split_mnist'])

  def test_table_iv(self):
    results = _synthetic(datasets=('miniimagenet',),
                         names=('emcl', 'emcl_lr_modulation', 'emcl_si'))
    results += _synthetic(datasets=('cifar100',), names=('emcl_gd',))
    rows = tables.aggregate(results)
    text = tables.table_iv(rows, 'miniimagenet')
    body = _table_rows(text)
    # Table IV's order; emcl_gd has results only on another dataset.
    self.assertEqual([r[0] for r in body],
                     ['emcl', 'emcl_lr_modulation', 'emcl_si'])
    self.assertEqual(body[1][1:5], ['✓', '×', '×', 'Taylor'])
    self.assertEqual(body[2][1:5], ['×', '✓', '✓', 'SI'])
    ref = _expected(results, 'miniimagenet', 'emcl', 'acc')[0]
    for cells in body:
      acc = _expected(results, 'miniimagenet', cells[0], 'acc')
      np.testing.assert_allclose(_pm(cells[5]), acc, atol=0.005 + 1e-9)
      np.testing.assert_allclose(float(cells[6]), acc[0] - ref, atol=0.0051)
      np.testing.assert_allclose(
          _pm(cells[7]), _expected(results, 'miniimagenet', cells[0], 'bwt'),
          atol=0.005 + 1e-9)
      self.assertEqual(cells[9], '2')
    self.assertEqual(body[0][6], '+0.00')
    self.assertEqual(text.splitlines()[-1],
                     'Missing (no results on miniimagenet): emcl_gd.')

  def test_table_iv_all_present_has_no_footnote(self):
    rows = tables.aggregate(_synthetic(datasets=('d',), names=('a', 'b')))
    text = tables.table_iv(rows, 'd', names=('b', 'a'))
    self.assertNotIn('Missing', text)
    body = _table_rows(text)
    self.assertEqual([r[0] for r in body], ['b', 'a'])
    self.assertEqual(body[0][1:5], ['?'] * 4)
    with self.assertRaisesRegex(ValueError, 'no results on d'):
      tables.table_iv(rows, 'd')

  @parameterized.named_parameters(
      # R[0, :1] = 1.0; R[1, :2] = (0.5 + 0.7) / 2.
      ('two_tasks', [[1.0, 0.1], [0.5, 0.7]], [100.0, 60.0]),
      # (0.9), (0.7 + 0.8) / 2, (0.6 + 0.5 + 0.95) / 3.
      ('three_tasks', [[0.9, 0.1, 0.12], [0.7, 0.8, 0.11],
                       [0.6, 0.5, 0.95]], [90.0, 75.0, 68.333333]),
      ('one_task', [[0.25]], [25.0]))
  def test_average_accuracy_curve(self, matrix, expected):
    np.testing.assert_allclose(tables.average_accuracy_curve(matrix),
                               expected, rtol=1e-6)

  def test_average_accuracy_curve_rejects_non_square(self):
    with self.assertRaisesRegex(ValueError, r'\[T, T\]'):
      tables.average_accuracy_curve([[0.5, 0.6, 0.7]])

  def test_aggregate_curves(self):
    results = _synthetic(datasets=('d',), names=('a', 'b'), seeds=(0, 1, 2))
    results.append({**results[0], 'name': 'joint', 'method': 'joint',
                    'accuracy_matrix': [[0.5, 0.6, 0.7, 0.8]]})
    curves = tables.aggregate_curves(results)
    self.assertEqual([c.name for c in curves], ['a', 'b'])  # joint skipped
    for c in curves:
      mats = np.array([r['accuracy_matrix'] for r in results
                       if r['name'] == c.name])
      per_seed = np.array([[100 * m[i, :i + 1].mean() for i in range(4)]
                           for m in mats])
      self.assertEqual(c.seeds, (0, 1, 2))
      np.testing.assert_allclose(c.mean, per_seed.mean(0))
      np.testing.assert_allclose(c.std, per_seed.std(0))
      np.testing.assert_allclose(c.matrix, mats.mean(0))
      # The last point is the mean ACC over seeds.
      acc = np.mean([r['acc'] for r in results if r['name'] == c.name])
      np.testing.assert_allclose(c.mean[-1], acc)

  def test_aggregate_curves_rejects_mixed_task_counts(self):
    results = _synthetic(datasets=('d',), names=('a',), seeds=(0,))
    results += _synthetic(datasets=('d',), names=('a',), seeds=(1,),
                          tasks=3)
    with self.assertRaisesRegex(ValueError, 'different numbers of tasks'):
      tables.aggregate_curves(results)


if __name__ == '__main__':
  absltest.main()
