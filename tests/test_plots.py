"""The figures: real PNGs that PIL decodes, of sensible size and content."""

import json
import os

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
from PIL import Image

from emcl_jax.reporting import figures
from emcl_jax.reporting import tables

NAMES = ('emcl', 'lamaml', 'emcl_si')


def setUpModule():
  # self.create_tempdir() reads --test_tmpdir; pytest does not parse flags.
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


def _synthetic(datasets=('cifar100',), tasks=4):
  """3 methods x 2 seeds of results dicts, T tasks, numbers from R."""
  rng = np.random.default_rng(1)
  out = []
  for d in datasets:
    for k, n in enumerate(NAMES):
      for s in (0, 1):
        r = np.tril(rng.uniform(0.3, 1.0, (tasks, tasks)))
        out.append({'dataset': d, 'method': n, 'name': n, 'seed': s,
                    'accuracy_matrix': r.tolist(),
                    'acc': float(100 * r[-1].mean()),
                    'bwt': float(100 * (r[-1, :-1] - np.diag(r)[:-1]).mean()),
                    'la': float(100 * np.diag(r).mean()),
                    'train_seconds': float(10.0 ** k * (1 + 0.1 * s))})
  return out


class PlotsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.folder = self.create_tempdir().full_path
    # Through files, as experiments/ scripts will use it.
    results_dir = self.create_tempdir().full_path
    for i, r in enumerate(_synthetic()):
      with open(os.path.join(results_dir, f'{i}.json'), 'w') as f:
        json.dump(r, f)
    results = tables.load(results_dir)
    self.rows = tables.aggregate(results)
    self.curves = tables.aggregate_curves(results)

  def assertPng(self, path, min_width=300, min_height=200):
    """A decodable PNG of more than 10 kB and at least the given size."""
    self.assertTrue(os.path.isfile(path), path)
    self.assertGreater(os.path.getsize(path), 10_000)
    with Image.open(path) as im:
      im.verify()
    with Image.open(path) as im:
      self.assertEqual(im.format, 'PNG')
      width, height = im.size
      rgb = np.asarray(im.convert('RGB')).astype(np.int32)
    self.assertGreaterEqual(width, min_width)
    self.assertGreaterEqual(height, min_height)
    # Something is drawn: many distinct colours, not a blank canvas.
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])
    self.assertGreater(len(colours), 20)
    return width, height

  def test_fig1(self):
    path = os.path.join(self.folder, 'fig1_cifar100.png')
    self.assertEqual(figures.fig1(self.rows, self.curves, path), path)
    width, height = self.assertPng(path)
    self.assertGreater(width, 2 * height)  # three panels side by side
    two = figures.fig1(self.rows, [], os.path.join(self.folder, 'two.png'))
    width2, _ = self.assertPng(two)
    self.assertLess(width2, width)  # no curves: two panels

  @parameterized.parameters(False, True)
  def test_fig2(self, log):
    path = os.path.join(self.folder, 'sub', f'fig2_{log}.png')
    self.assertEqual(figures.fig2(self.rows, path, log=log), path)
    self.assertPng(path)

  def test_fig3(self):
    path = figures.fig3(self.rows, os.path.join(self.folder, 'fig3.png'))
    one, _ = self.assertPng(path)
    # Two datasets: one panel each, side by side.
    rows = tables.aggregate(_synthetic(('cifar100', 'miniimagenet')))
    path = figures.fig3(rows, os.path.join(self.folder, 'fig3_two.png'))
    two, _ = self.assertPng(path)
    self.assertGreater(two, 1.7 * one)

  def test_heatmap(self):
    matrix = self.curves[0].matrix
    path = figures.heatmap(matrix, os.path.join(self.folder, 'h.png'),
                         'EMCL on CIFAR100')
    self.assertPng(path)
    # Large T (no per-cell numbers) and joint's single row also draw.
    big = np.tril(np.random.default_rng(0).uniform(0, 1, (50, 50)))
    self.assertPng(figures.heatmap(big, os.path.join(self.folder, 'b.png'),
                                 'T = 50'))
    with self.assertRaisesRegex(ValueError, '2-D'):
      figures.heatmap([0.5, 0.6], os.path.join(self.folder, 'x.png'), 'x')

  def test_figures_one_file_per_dataset(self):
    rows = tables.aggregate(_synthetic(('cifar100', 'miniimagenet')))
    curves = tables.aggregate_curves(_synthetic(('cifar100',
                                                 'miniimagenet')))
    paths = figures.figures(rows, curves, self.folder)
    self.assertEqual([os.path.basename(p) for p in paths], [
        'fig1_cifar100.png', 'fig2_cifar100.png', 'fig3_cifar100.png',
        'heatmap_cifar100_emcl.png', 'fig1_miniimagenet.png',
        'fig2_miniimagenet.png', 'fig3_miniimagenet.png',
        'heatmap_miniimagenet_emcl.png'])
    for p in paths:
      self.assertPng(p)

  def test_errors(self):
    rows = tables.aggregate(_synthetic(('cifar100', 'miniimagenet')))
    out = os.path.join(self.folder, 'x.png')
    with self.assertRaisesRegex(ValueError, 'pass dataset='):
      figures.fig1(rows, [], out)
    with self.assertRaisesRegex(ValueError, 'no rows for dataset'):
      figures.fig1(rows, [], out, dataset='split_mnist')
    zero = [self.rows[0]._replace(train_seconds=0.0)]
    with self.assertRaisesRegex(ValueError, 'log=False'):
      figures.fig3(zero, out)
    self.assertFalse(os.path.exists(out))

  def test_labels_and_colours(self):
    self.assertEqual(figures.label('emcl_si'), 'EMCL-SI')
    self.assertEqual(figures.label('my_run'), 'my_run')
    palette = figures.colors(['a', 'b', 'a', 'c'])
    self.assertEqual(list(palette), ['a', 'b', 'c'])
    self.assertLen({palette[n] for n in palette}, 3)


if __name__ == '__main__':
  absltest.main()
