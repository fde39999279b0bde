"""The equal-budget selection study (experiments/selection.py): settings
chosen on validation ACC only, then run on fresh seeds; its tables."""

import os

from absl.testing import absltest
import numpy as np

from emcl_jax import configs
from emcl_jax import runner
import fixtures

selection = fixtures.study('selection')


def outcome(dataset, method, name, vals, accs, error=None, seed0=0):
  config = configs.schema.override(configs.get_config(dataset, method),
                                   {'output.name': name})
  results = [{'seed': seed0 + i, 'val_acc': v, 'acc': a, 'bwt': -1.0}
             for i, (v, a) in enumerate(zip(vals, accs))]
  return runner.Outcome(configs.resolve(config), results, error)


class ChooseTest(absltest.TestCase):

  def test_the_choice_follows_validation_never_the_test_set(self):
    outs = [
        outcome('mnist_permutations', 'emcl', 'a', (70, 72), (90, 90)),
        outcome('mnist_permutations', 'emcl', 'b', (75, 75), (60, 60)),
        outcome('mnist_permutations', 'emcl', 'c', (99, 99), (99, 99),
                error='diverged'),
        outcome('mnist_permutations', 'emcl', 'd', (99,), (99,)),  # 1 seed
        outcome('mnist_permutations', 'lamaml', 'e', (60, 62), (80, 80)),
    ]
    emcl, lamaml = selection.choose(outs, seeds=2)
    self.assertEqual((emcl.name, emcl.tried, emcl.finished), ('b', 4, 2))
    self.assertEqual(emcl.val_acc, (75.0, 0.0))
    self.assertEqual(emcl.acc, 60.0)
    self.assertEqual((lamaml.method, lamaml.name), ('lamaml', 'e'))
    text = selection.selection_table([emcl, lamaml], [0, 1])
    self.assertIn('| MNIST Permutations | emcl | 4 (2) | 75.00 +- 0.00 | '
                  '60.00 | b |', text)
    no_val = outcome('mnist_permutations', 'er', 'f', (1, 1), (2, 2))
    for r in no_val.results:
      del r['val_acc']
    with self.assertRaisesRegex(ValueError, 'no validation ACC'):
      selection.choose([no_val], seeds=2)

  def test_fresh_runs_add_emcl_s_controls_and_shipped_default(self):
    outs = [outcome('mnist_permutations', 'emcl', 'b', (75, 75), (60, 60)),
            outcome('mnist_permutations', 'er', 'e', (60, 62), (80, 80))]
    chosen = selection.choose(outs, seeds=2)
    shipped = configs.schema.override(
        configs.get_config('mnist_permutations', 'emcl'),
        {'output.name': 'emcl,shipped', 'method.beta': 0.5})
    runs = selection.fresh_configs(
        chosen, {'mnist_permutations': shipped}, seed=10, seeds=3)
    self.assertEqual([c.output.name for c in runs],
                     ['b', 'b,importance=none', 'emcl,shipped',
                      'emcl,shipped,importance=none', 'e'])
    self.assertTrue(all((c.seed, c.seeds) == (10, 3) for c in runs))
    self.assertEqual(runs[1].method.params.importance, 'none')
    self.assertEqual(runs[3].method.params.beta, 0.5)
    # A shipped default that is the chosen setting runs once.
    same = configs.schema.replace(chosen[0].config, 'output.name', 'x')
    runs = selection.fresh_configs(chosen[:1], {'mnist_permutations': same},
                                   seed=10, seeds=3)
    self.assertLen(runs, 2)

  def test_fresh_table_pairs_emcl_and_lamaml_by_seed(self):
    chosen = selection.choose(
        [outcome('mnist_permutations', 'emcl', 'a', (1, 1), (1, 1)),
         outcome('mnist_permutations', 'lamaml', 'b', (1, 1), (1, 1))], 2)
    fresh = [
        outcome('mnist_permutations', 'emcl', 'a', (0,) * 3, (70, 74, 72),
                seed0=10),
        outcome('mnist_permutations', 'lamaml', 'b', (0,) * 3, (71, 71, 75),
                seed0=10),
        outcome('mnist_permutations', 'emcl', 'a,importance=none', (0,) * 3,
                (69, 70, 71), seed0=10)]
    text = selection.fresh_table(chosen, fresh, [10, 11, 12])
    # Differences -1, +3, -3: mean -1/3, population std sqrt(56/9) ~ 2.49.
    self.assertIn('| MNIST Permutations | 3 | -0.33 +- 2.49 |', text)
    self.assertIn('| MNIST Permutations | emcl | a | 3 | 72.00 +- 1.63 |',
                  text)
    self.assertIn('| MNIST Permutations | a | 72.00 +- 1.63 | 70.00 +- 0.82 '
                  '| +2.00 |', text)


class SelectionScriptTest(absltest.TestCase):

  def test_selects_on_validation_then_runs_fresh_seeds(self):
    tmp = fixtures.tmp_dir(self)
    grid = os.path.join(tmp, 'grid.py')
    with open(grid, 'w') as f:
      f.write('from emcl_jax.launch import grids\n'
              'def get_grid():\n'
              "  return grids.parse_grid('method=er;lr=0.01,0.1')\n")
    args = [f'--workdir={tmp}/w', f'--grid_file={grid}', '--methods=er',
            '--datasets=mnist_permutations', '--seeds=2', '--fresh_seeds=2',
            '--config.data.num_tasks=2', '--config.data.samples_per_task=50',
            '--config.output.progress=false']
    res = fixtures.call('selection', *args)
    self.assertEqual(res.returncode, 0, res.stderr)
    select = runner.sweep(selection.selection_configs(
        ['mnist_permutations'], ['er'], grid), f'{tmp}/w/select', run=False)
    vals = {o.config.output.name: np.mean([r['val_acc'] for r in o.results])
            for o in select}
    best = max(vals, key=vals.get)
    self.assertIn(f'| {best} |', res.stdout)
    self.assertIn('Fresh seeds 10-11', res.stdout)
    folder = os.path.join(tmp, 'w', 'fresh', 'mnist_permutations', best)
    self.assertTrue(os.path.isdir(folder))
    self.assertTrue(os.path.isfile(os.path.join(tmp, 'w', 'selection.md')))
    # Selection and fresh seeds must not overlap; --print_config trains
    # nothing.
    bad = fixtures.call('selection', *args, '--fresh_seed=1')
    self.assertEqual(bad.returncode, 2)
    self.assertIn('overlap', bad.stderr)
    shown = fixtures.call('selection', *args[:-1], f'--workdir={tmp}/p',
                          '--print_config')
    self.assertEqual(shown.returncode, 0, shown.stderr)
    self.assertIn('data.validation', shown.stdout)
    self.assertFalse(os.path.exists(f'{tmp}/p'))


if __name__ == '__main__':
  absltest.main()
