"""The figures: the numbers they plot, against hand-computed ones, and the
PNG files they write.

Every figure is built from results files written here with hand-chosen
accuracy matrices, and the numbers drawn (bar heights and error bars, curve
points and bands, error-bar points, heatmap cells) are read back from the
matplotlib artists of the Figure that was saved. The expected numbers are
worked out by hand from the matrices, in the comments of RUNS and of the
EXPECTED_* tables, so a figure of the wrong numbers (a wrong sign, a std
in place of a mean, two methods swapped, a transposed matrix) fails.
"""

import contextlib
import json
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
from matplotlib import collections
from matplotlib import colormaps
from matplotlib import container
from matplotlib import image
from matplotlib.figure import Figure
import numpy as np
from PIL import Image

import fixtures
from emcl_jax.reporting import figures
from emcl_jax.reporting import tables

# Hand-chosen runs: (dataset, name, seed) -> (accuracy matrix R as
# fractions, [i][j] = accuracy on task j after training task i; ACC; BWT;
# training seconds). ACC = 100 * mean(R[T-1]) and
# BWT = 100 * mean over j < T-1 of R[T-1, j] - R[j, j], worked out by hand
# in the comment of each run. The average-accuracy curve of a run is
# 100 * mean(R[t, :t+1]) for t = 0..T-1.
RUNS = {
    # ACC (.7+.8+.9)/3 = 80; BWT (-.2, -.1) -> -15; curve 90, 85, 80.
    ('cifar100', 'emcl', 0): (
        [[.9, 0, 0], [.8, .9, 0], [.7, .8, .9]], 80.0, -15.0, 10.0),
    # ACC (.8+.9+1)/3 = 90; BWT (-.2, 0) -> -10; curve 100, 90, 90.
    ('cifar100', 'emcl', 1): (
        [[1., 0, 0], [.9, .9, 0], [.8, .9, 1.]], 90.0, -10.0, 14.0),
    # ACC (.2+.4+.6)/3 = 40; BWT (-.4, -.4) -> -40; curve 60, 60, 40.
    ('cifar100', 'lamaml', 0): (
        [[.6, 0, 0], [.4, .8, 0], [.2, .4, .6]], 40.0, -40.0, 200.0),
    # ACC (.4+.6+.8)/3 = 60; BWT (-.2, 0) -> -10; curve 60, 60, 60.
    ('cifar100', 'lamaml', 1): (
        [[.6, 0, 0], [.6, .6, 0], [.4, .6, .8]], 60.0, -10.0, 400.0),
    # ACC (.5+.7+.9)/3 = 70; BWT (0, 0) -> 0; curve 50, 60, 70.
    ('cifar100', 'emcl_si', 0): (
        [[.5, 0, 0], [.5, .7, 0], [.5, .7, .9]], 70.0, 0.0, 3.0),
    # ACC (.9+.8+.7)/3 = 80; BWT (+.2, +.1) -> +15; curve 70, 75, 80.
    ('cifar100', 'emcl_si', 1): (
        [[.7, 0, 0], [.8, .7, 0], [.9, .8, .7]], 80.0, 15.0, 5.0),
    # The second dataset lists its methods in the other order.
    # ACC (.3+.6)/2 = 45; BWT (-.2) -> -20; curve 50, 45.
    ('miniimagenet', 'lamaml', 0): ([[.5, 0], [.3, .6]], 45.0, -20.0, 1000.0),
    # ACC (.5+.8)/2 = 65; BWT (0) -> 0; curve 50, 65.
    ('miniimagenet', 'lamaml', 1): ([[.5, 0], [.5, .8]], 65.0, 0.0, 3000.0),
    # ACC (.8+.9)/2 = 85; BWT (-.1) -> -10; curve 90, 85.
    ('miniimagenet', 'emcl', 0): ([[.9, 0], [.8, .9]], 85.0, -10.0, 50.0),
    # ACC (.9+.9)/2 = 90; BWT (0) -> 0; curve 90, 90.
    ('miniimagenet', 'emcl', 1): ([[.9, 0], [.9, .9]], 90.0, 0.0, 70.0),
}

# Per (dataset, name), mean and population std over the two seeds above,
# by hand: (ACC, ACC std, BWT, BWT std, seconds, seconds std).
EXPECTED_ROWS = {
    'cifar100': {
        'emcl': (85.0, 5.0, -12.5, 2.5, 12.0, 2.0),
        'lamaml': (50.0, 10.0, -25.0, 15.0, 300.0, 100.0),
        'emcl_si': (75.0, 5.0, 7.5, 7.5, 4.0, 1.0),
    },
    'miniimagenet': {
        'lamaml': (55.0, 10.0, -10.0, 10.0, 2000.0, 1000.0),
        'emcl': (87.5, 2.5, -5.0, 5.0, 60.0, 10.0),
    },
}
# Average-accuracy curves (percent), mean and std over seeds of the per-run
# curves in RUNS' comments.
EXPECTED_CURVES = {
    'cifar100': {
        'emcl': ([95.0, 87.5, 85.0], [5.0, 2.5, 5.0]),
        'lamaml': ([60.0, 60.0, 50.0], [0.0, 0.0, 10.0]),
        'emcl_si': ([60.0, 67.5, 75.0], [10.0, 7.5, 5.0]),
    },
    'miniimagenet': {
        'lamaml': ([50.0, 55.0], [0.0, 10.0]),
        'emcl': ([90.0, 87.5], [0.0, 2.5]),
    },
}
# EMCL's accuracy matrix, mean over its two seeds, in percent.
EXPECTED_EMCL_MATRIX = {
    'cifar100': [[95, 0, 0], [85, 90, 0], [75, 85, 95]],
    'miniimagenet': [[90, 0], [85, 90]],
}
# Display names and palette index of each method: a method keeps the tab10
# colour of its first appearance in the rows (cifar100's order).
DISPLAY = {'emcl': 'EMCL', 'lamaml': 'La-MAML', 'emcl_si': 'EMCL-SI'}
COLOUR_INDEX = {'emcl': 0, 'lamaml': 1, 'emcl_si': 2}


def _results():
  """RUNS as results dicts, in RUNS' order."""
  return [{'dataset': d, 'method': n, 'name': n, 'seed': s,
           'accuracy_matrix': r, 'acc': acc, 'bwt': bwt,
           'train_seconds': seconds}
          for (d, n, s), (r, acc, bwt, seconds) in RUNS.items()]


def _colour(name):
  """The RGBA colour the figures give `name` (see COLOUR_INDEX)."""
  return colormaps['tab10'](COLOUR_INDEX[name])


@contextlib.contextmanager
def _saved_figures():
  """Collects every Figure saved inside the block; the files are still
  written."""
  saved = []
  original = Figure.savefig

  def savefig(fig, *args, **kwargs):
    saved.append(fig)
    return original(fig, *args, **kwargs)

  with mock.patch.object(Figure, 'savefig', autospec=True,
                         side_effect=savefig):
    yield saved


def _bar_data(ax):
  """The one bar chart of `ax`: (x centres, heights, error-bar centres,
  error-bar half-lengths, face colours)."""
  bars = [c for c in ax.containers if isinstance(c, container.BarContainer)]
  assert len(bars) == 1, bars
  patches = bars[0].patches
  x = [p.get_x() + p.get_width() / 2 for p in patches]
  heights = [p.get_height() for p in patches]
  (segments,) = [c.get_segments() for c in bars[0].errorbar.lines[2]]
  centres = [(s[0, 1] + s[1, 1]) / 2 for s in segments]
  halves = [abs(s[1, 1] - s[0, 1]) / 2 for s in segments]
  colours = [p.get_facecolor() for p in patches]
  return x, heights, centres, halves, colours


def _tick_labels(ax):
  """{tick position: label text} of ax's x axis."""
  return {float(t): lab.get_text()
          for t, lab in zip(ax.get_xticks(), ax.get_xticklabels())}


def _band(poly, xs):
  """(lower, upper) of a fill_between band at each of `xs`."""
  v = poly.get_paths()[0].vertices
  lower = [v[v[:, 0] == x, 1].min() for x in xs]
  upper = [v[v[:, 0] == x, 1].max() for x in xs]
  return lower, upper


def _errorbar_points(ax):
  """Each errorbar call of `ax`: (x, y, xerr, yerr, colour) of its point;
  the errors are the half-lengths of its horizontal and vertical bars."""
  out = []
  for c in ax.containers:
    if not isinstance(c, container.ErrorbarContainer):
      continue
    ((x, y),) = c.lines[0].get_xydata()
    xerr = yerr = None
    for lines in c.lines[2]:
      ((a, b),) = lines.get_segments()
      if a[1] == b[1]:  # horizontal: the x error bar
        xerr = abs(b[0] - a[0]) / 2
      else:
        yerr = abs(b[1] - a[1]) / 2
    out.append((x, y, xerr, yerr, c.lines[0].get_color()))
  return out


class PlotsTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    self.folder = fixtures.tmp_dir(self)
    # Through files, as experiments/ scripts will use it.
    results_dir = fixtures.tmp_dir(self)
    for i, r in enumerate(_results()):
      with open(os.path.join(results_dir, f'{i:02d}.json'), 'w') as f:
        json.dump(r, f)
    results = tables.load(results_dir)
    self.rows = tables.aggregate(results)
    self.curves = tables.aggregate_curves(results)
    self.cifar = [r for r in self.rows if r.dataset == 'cifar100']

  def assertPng(self, path, min_width=300, min_height=200):
    """A decodable PNG file of at least the given size in pixels."""
    self.assertTrue(os.path.isfile(path), path)
    self.assertGreater(os.path.getsize(path), 10_000)
    with Image.open(path) as im:
      im.verify()
    with Image.open(path) as im:
      self.assertEqual(im.format, 'PNG')
      width, height = im.size
    self.assertGreaterEqual(width, min_width)
    self.assertGreaterEqual(height, min_height)
    return width, height

  def assertBars(self, ax, dataset, value, error):
    """ax's bars are EXPECTED_ROWS[dataset]'s columns `value` +- `error`,
    one per method in the rows' order, each under its method's name and in
    its method's colour."""
    expected = EXPECTED_ROWS[dataset]
    names = list(expected)
    x, heights, centres, halves, colours = _bar_data(ax)
    np.testing.assert_allclose(x, range(len(names)), atol=1e-9)
    np.testing.assert_allclose(
        heights, [expected[n][value] for n in names], atol=1e-9,
        err_msg=f'bar heights of {names}')
    np.testing.assert_allclose(
        centres, [expected[n][value] for n in names], atol=1e-9,
        err_msg=f'error-bar centres of {names}')
    np.testing.assert_allclose(
        halves, [expected[n][error] for n in names], atol=1e-9,
        err_msg=f'error-bar half-lengths of {names}')
    np.testing.assert_allclose(colours, [_colour(n) for n in names])
    self.assertEqual(_tick_labels(ax),
                     {float(i): DISPLAY[n] for i, n in enumerate(names)})

  def test_fig1_plots_acc_bwt_and_curves(self):
    """ACC and BWT bars (mean +- std over seeds) and the average-accuracy
    curves (mean, band of +- std) are the hand-computed ones."""
    path = os.path.join(self.folder, 'fig1_cifar100.png')
    with _saved_figures() as saved:
      self.assertEqual(
          figures.fig1(self.rows, self.curves, path, dataset='cifar100'),
          path)
    width, height = self.assertPng(path)
    self.assertGreater(width, 2 * height)  # three panels side by side
    (fig,) = saved
    self.assertEqual(fig.get_suptitle(), 'Split CIFAR100')
    acc_ax, bwt_ax, curve_ax = fig.axes
    self.assertBars(acc_ax, 'cifar100', 0, 1)
    self.assertBars(bwt_ax, 'cifar100', 2, 3)
    self.assertEqual(acc_ax.get_ylabel(), 'ACC (%)')
    self.assertEqual(bwt_ax.get_ylabel(), 'BWT (%)')

    expected = EXPECTED_CURVES['cifar100']
    lines = curve_ax.get_lines()
    bands = [c for c in curve_ax.collections
             if isinstance(c, collections.PolyCollection)]
    self.assertLen(lines, len(expected))
    self.assertLen(bands, len(expected))
    for line, band, (name, (mean, std)) in zip(lines, bands,
                                               expected.items()):
      self.assertEqual(line.get_label(), DISPLAY[name])
      np.testing.assert_allclose(line.get_color(), _colour(name))
      xs = [1, 2, 3]  # the number of tasks learned
      np.testing.assert_allclose(line.get_xdata(), xs)
      np.testing.assert_allclose(line.get_ydata(), mean, atol=1e-9,
                                 err_msg=f'{name} curve')
      lower, upper = _band(band, xs)
      np.testing.assert_allclose(lower, np.subtract(mean, std), atol=1e-9,
                                 err_msg=f'{name} band, lower edge')
      np.testing.assert_allclose(upper, np.add(mean, std), atol=1e-9,
                                 err_msg=f'{name} band, upper edge')
    self.assertEqual([t.get_text() for t in curve_ax.get_legend().texts],
                     [DISPLAY[n] for n in expected])

  def test_fig1_one_dataset_without_curves(self):
    """dataset= picks that dataset's rows (in their own order); without
    curves on it, two panels only."""
    path = os.path.join(self.folder, 'two.png')
    with _saved_figures() as saved:
      figures.fig1(self.rows, [], path, dataset='miniimagenet')
    self.assertPng(path)
    (fig,) = saved
    self.assertEqual(fig.get_suptitle(), 'Split miniImageNet')
    acc_ax, bwt_ax = fig.axes  # no curve panel
    # fig1 colours a method by its first appearance in the drawn rows.
    with mock.patch.dict(COLOUR_INDEX, {'lamaml': 0, 'emcl': 1}):
      self.assertBars(acc_ax, 'miniimagenet', 0, 1)
      self.assertBars(bwt_ax, 'miniimagenet', 2, 3)

  @parameterized.parameters(False, True)
  def test_fig2_plots_training_seconds(self, log):
    """One panel per dataset, bars of the mean training seconds with std
    error bars; a method keeps its colour across the panels."""
    path = os.path.join(self.folder, 'sub', f'fig2_{log}.png')
    with _saved_figures() as saved:
      self.assertEqual(figures.fig2(self.rows, path, log=log), path)
    self.assertPng(path)
    (fig,) = saved
    cifar_ax, mini_ax = fig.axes
    for ax, dataset, title in ((cifar_ax, 'cifar100', 'Split CIFAR100'),
                               (mini_ax, 'miniimagenet',
                                'Split miniImageNet')):
      self.assertEqual(ax.get_title(), f'Training time, {title}')
      self.assertBars(ax, dataset, 4, 5)
      self.assertEqual(ax.get_yscale(), 'log' if log else 'linear')

  def test_fig3_plots_acc_against_seconds(self):
    """One labelled point per method at (mean seconds, mean ACC), with std
    error bars on both axes; one panel per dataset."""
    path = os.path.join(self.folder, 'fig3_cifar100.png')
    with _saved_figures() as saved:
      figures.fig3(self.cifar, path)
    one, _ = self.assertPng(path)
    path = os.path.join(self.folder, 'fig3_two.png')
    with _saved_figures() as saved_two:
      figures.fig3(self.rows, path)
    two, _ = self.assertPng(path)
    self.assertGreater(two, 1.7 * one)  # two panels side by side

    (single_ax,) = saved[0].axes
    cifar_ax, mini_ax = saved_two[0].axes
    for ax, dataset in ((single_ax, 'cifar100'), (cifar_ax, 'cifar100'),
                        (mini_ax, 'miniimagenet')):
      self.assertEqual(ax.get_xscale(), 'log')
      expected = EXPECTED_ROWS[dataset]
      points = _errorbar_points(ax)
      want = [(e[4], e[0], e[5], e[1]) for e in expected.values()]
      np.testing.assert_allclose([p[:4] for p in points], want, atol=1e-9,
                                 err_msg=f'{dataset}: (s, ACC, s std, '
                                 f'ACC std) of {list(expected)}')
      np.testing.assert_allclose([p[4] for p in points],
                                 [_colour(n) for n in expected])
      self.assertEqual(
          [(a.get_text(), *a.xy) for a in ax.texts],
          [(DISPLAY[n], e[4], e[0]) for n, e in expected.items()])
      self.assertEqual(ax.get_ylabel(), 'ACC (%)')

  def test_fig3_linear_axis(self):
    """log=False keeps a linear seconds axis and the same points."""
    with _saved_figures() as saved:
      figures.fig3(self.cifar, os.path.join(self.folder, 'lin.png'),
                   log=False)
    (ax,) = saved[0].axes
    self.assertEqual(ax.get_xscale(), 'linear')
    np.testing.assert_allclose(
        [p[:2] for p in _errorbar_points(ax)],
        [(e[4], e[0]) for e in EXPECTED_ROWS['cifar100'].values()])

  def assertHeatmap(self, fig, expected, cell_text=True):
    """fig's image is `expected` (percent, rows = after training task i,
    columns = evaluated on task j) on a fixed 0..100 colour scale, with
    each cell's rounded value written at column j, row i if `cell_text`."""
    ax = fig.axes[0]
    (im,) = [a for a in ax.get_children() if isinstance(a, image.AxesImage)]
    np.testing.assert_allclose(np.asarray(im.get_array()), expected,
                               atol=1e-9, err_msg='heatmap cells')
    self.assertEqual(im.get_clim(), (0, 100))
    texts = {(t.get_position()): t.get_text() for t in ax.texts}
    if cell_text:
      rows, cols = np.shape(expected)
      self.assertEqual(texts, {(j, i): f'{expected[i][j]:.0f}'
                               for i in range(rows) for j in range(cols)})
    else:
      self.assertEmpty(texts)

  def test_heatmap(self):
    """The matrix in percent, R[i][j] at row i, column j (an asymmetric
    matrix, so a transposed image fails); joint's single row and a large T
    (no per-cell numbers) also draw."""
    matrix = [[.91, .12, .23], [.54, .85, .36], [.47, .68, .79]]
    with _saved_figures() as saved:
      path = figures.heatmap(matrix, os.path.join(self.folder, 'h.png'),
                             'EMCL on CIFAR100')
    self.assertPng(path)
    (fig,) = saved
    self.assertHeatmap(fig, [[91, 12, 23], [54, 85, 36], [47, 68, 79]])
    self.assertEqual(fig.axes[0].get_title(), 'EMCL on CIFAR100')

    with _saved_figures() as saved:
      self.assertPng(figures.heatmap(
          [[.25, .5, .75, 1.]], os.path.join(self.folder, 'j.png'), 'joint'),
          min_height=100)
    self.assertHeatmap(saved[0], [[25, 50, 75, 100]])

    big = np.tril(np.random.default_rng(0).uniform(0, 1, (50, 50)))
    with _saved_figures() as saved:
      self.assertPng(figures.heatmap(big, os.path.join(self.folder, 'b.png'),
                                     'T = 50'))
    self.assertHeatmap(saved[0], 100 * big, cell_text=False)
    with self.assertRaisesRegex(ValueError, '2-D'):
      figures.heatmap([0.5, 0.6], os.path.join(self.folder, 'x.png'), 'x')

  def test_figures_one_file_per_dataset(self):
    """One file per dataset and kind, named by the module's convention,
    each a PNG; the heatmaps are EMCL's mean accuracy matrix over seeds."""
    with _saved_figures() as saved:
      paths = figures.figures(self.rows, self.curves, self.folder)
    self.assertEqual([os.path.basename(p) for p in paths], [
        'fig1_cifar100.png', 'fig2_cifar100.png', 'fig3_cifar100.png',
        'heatmap_cifar100_emcl.png', 'fig1_miniimagenet.png',
        'fig2_miniimagenet.png', 'fig3_miniimagenet.png',
        'heatmap_miniimagenet_emcl.png'])
    for p in paths:
      self.assertPng(p)
    self.assertLen(saved, len(paths))
    self.assertHeatmap(saved[3], EXPECTED_EMCL_MATRIX['cifar100'])
    self.assertHeatmap(saved[7], EXPECTED_EMCL_MATRIX['miniimagenet'])
    self.assertEqual(
        saved[3].axes[0].get_title(),
        'Split CIFAR100: EMCL, accuracy matrix (mean of 2 seeds)')
    # Each dataset's Fig. 1 draws that dataset's numbers only.
    self.assertBars(saved[0].axes[0], 'cifar100', 0, 1)
    with mock.patch.dict(COLOUR_INDEX, {'lamaml': 0, 'emcl': 1}):
      self.assertBars(saved[4].axes[1], 'miniimagenet', 2, 3)

  def test_errors(self):
    out = os.path.join(self.folder, 'x.png')
    with self.assertRaisesRegex(ValueError, 'pass dataset='):
      figures.fig1(self.rows, [], out)
    with self.assertRaisesRegex(ValueError, 'no rows for dataset'):
      figures.fig1(self.rows, [], out, dataset='split_mnist')
    zero = [self.rows[0]._replace(train_seconds=0.0)]
    with self.assertRaisesRegex(ValueError, 'log=False'):
      figures.fig3(zero, out)
    with self.assertRaisesRegex(ValueError, 'log=False'):
      figures.fig2(zero, out, log=True)
    with self.assertRaisesRegex(ValueError, 'no rows'):
      figures.fig2([], out)
    self.assertFalse(os.path.exists(out))

  def test_labels_and_colours(self):
    self.assertEqual(figures.label('emcl_si'), 'EMCL-SI')
    self.assertEqual(figures.label('my_run'), 'my_run')
    palette = figures.colors(['a', 'b', 'a', 'c'])
    self.assertEqual(list(palette), ['a', 'b', 'c'])
    self.assertLen({palette[n] for n in palette}, 3)


if __name__ == '__main__':
  absltest.main()
