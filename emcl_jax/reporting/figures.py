"""The paper's figures from aggregated results, as PNG files.

  fig1(rows, curves, path)  Fig. 1: ACC and BWT bars (std error bars) and
                            the average accuracy over the tasks learned so
                            far, against the number of tasks (std bands).
  fig2(rows, path)          Fig. 2: training seconds per method (bars).
  fig3(rows, path)          Fig. 3: ACC against training seconds, one point
                            per method (EMCL-SI included), log x.
  heatmap(matrix, path, title)  one T x T accuracy matrix.
  figures(rows, curves, folder)  all of them, one file per dataset.

`rows` and `curves` come from `tables.aggregate` and
`tables.aggregate_curves`. File convention of `figures`: one figure per
dataset and kind, `fig1_{dataset}.png`, `fig2_{dataset}.png`,
`fig3_{dataset}.png` and `heatmap_{dataset}_{name}.png` (the accuracy
matrix's mean over seeds). `fig1` draws one dataset; `fig2` and `fig3` draw
one panel per dataset of `rows`, so passing two datasets' rows gives the
paper's two-panel figures.

Figures are built on matplotlib's Agg canvas directly (no pyplot, no
display and no change to the global backend) and saved at `DPI` dots per
inch. Each function returns the path it wrote. A method keeps its colour
across panels and figures (`colors`).
"""

import io
import os
from typing import Any, Optional, Sequence

from matplotlib import colormaps
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
import numpy as np

from emcl_jax import data as data_lib
from emcl_jax import files
from emcl_jax import methods as methods_lib
from emcl_jax.reporting import tables

DPI = 150

# Display names, as the paper writes them (the name itself if unknown):
# `methods.label` of a method name (a run's name), `data.label` of a
# benchmark.
label = methods_lib.label
dataset_label = data_lib.label


def colors(names: Sequence[str]) -> dict[str, Any]:
  """One colour per name (tab10, then tab20), in the order given."""
  cmap = colormaps['tab10' if len(names) <= 10 else 'tab20']
  return {n: cmap(i % cmap.N) for i, n in enumerate(dict.fromkeys(names))}


def _save(fig: Figure, path: str) -> str:
  """Writes `fig` as PNG to `path` atomically (`files.write_file`: a killed
  run never leaves half a PNG); returns path."""
  FigureCanvasAgg(fig)
  buffer = io.BytesIO()
  fig.savefig(buffer, dpi=DPI, format='png', bbox_inches='tight')
  return files.write_file(path, buffer.getvalue())


def _log_scale(ax, which: str) -> None:
  """Log scale on ax's 'x' or 'y' axis, with plain-number tick labels."""
  getattr(ax, f'set_{which}scale')('log')
  axis = getattr(ax, f'{which}axis')
  plain = ticker.FuncFormatter(lambda v, _: f'{v:g}')
  axis.set_major_formatter(plain)
  axis.set_minor_locator(ticker.LogLocator(subs=(2, 3, 4, 6)))
  axis.set_minor_formatter(plain)


def _one_dataset(rows: Sequence[tables.Row], dataset: Optional[str]) -> str:
  """The dataset to draw: `dataset`, or the only one of `rows`."""
  found = tables.datasets_of(rows)
  if dataset is None:
    if len(found) != 1:
      raise ValueError(f'rows span datasets {found}; pass dataset=')
    return found[0]
  if dataset not in found:
    raise ValueError(f'no rows for dataset {dataset!r}; have {found}')
  return dataset


def _bars(ax, rows, values, errors, palette, ylabel):
  """One bar per row with std error bars, method names under them."""
  x = np.arange(len(rows))
  ax.bar(x, values, yerr=errors, capsize=3,
         color=[palette[r.name] for r in rows], edgecolor='black',
         linewidth=0.5)
  ax.set_xticks(x, [label(r.name) for r in rows], rotation=45, ha='right')
  ax.set_ylabel(ylabel)
  ax.axhline(0, color='black', linewidth=0.5)
  ax.grid(axis='y', alpha=0.3)


def fig1(rows: Sequence[tables.Row], curves: Sequence[tables.Curve],
         path: str, *, dataset: Optional[str] = None) -> str:
  """Fig. 1 for one dataset: ACC bars, BWT bars, average-accuracy curves.

  Args:
    rows: from `tables.aggregate`.
    curves: from `tables.aggregate_curves`; the third panel (mean over the
      tasks learned so far, against the number of tasks learned, with a
      band of +- one std over seeds) is left out if none is on `dataset`.
    path: the PNG to write.
    dataset: the dataset to draw; None: the only one in `rows`.

  Returns:
    path.

  Raises:
    ValueError: no rows on `dataset`, or several datasets and no `dataset`.
  """
  dataset = _one_dataset(rows, dataset)
  rows = [r for r in rows if r.dataset == dataset]
  curves = [c for c in curves if c.dataset == dataset]
  palette = colors([r.name for r in rows] + [c.name for c in curves])
  panels = 3 if curves else 2
  fig = Figure(figsize=(5 * panels, 4.5), layout='constrained')
  axes = fig.subplots(1, panels)
  _bars(axes[0], rows, [r.acc for r in rows], [r.acc_std for r in rows],
        palette, 'ACC (%)')
  axes[0].set_title('ACC (larger is better)')
  _bars(axes[1], rows, [r.bwt for r in rows], [r.bwt_std for r in rows],
        palette, 'BWT (%)')
  axes[1].set_title('BWT (larger is better)')
  if curves:
    ax = axes[2]
    for c in curves:
      x = np.arange(1, len(c.mean) + 1)
      ax.plot(x, c.mean, color=palette[c.name], label=label(c.name),
              marker='o' if len(x) <= 20 else None, markersize=3)
      ax.fill_between(x, c.mean - c.std, c.mean + c.std,
                      color=palette[c.name], alpha=0.2, linewidth=0)
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_xlabel('number of tasks learned')
    ax.set_ylabel('average accuracy on learned tasks (%)')
    ax.set_title('Average accuracy as tasks are learned')
    ax.grid(alpha=0.3)
    ax.legend(fontsize='small')
  fig.suptitle(tables.dataset_title(rows, dataset))
  return _save(fig, path)


def _panels(rows: Sequence[tables.Row], width: float):
  """A figure with one axes per dataset of `rows`: (fig, [(ds, rows, ax)])."""
  found = tables.datasets_of(rows)
  if not found:
    raise ValueError('no rows to draw')
  fig = Figure(figsize=(width * len(found), 4.5), layout='constrained')
  axes = np.atleast_1d(fig.subplots(1, len(found)))
  return fig, [(d, [r for r in rows if r.dataset == d], ax)
               for d, ax in zip(found, axes)]


def _check_log(rows: Sequence[tables.Row]) -> None:
  """Raises ValueError if a training time cannot go on a log axis."""
  bad = [r.name for r in rows if not r.train_seconds > 0]
  if bad:
    raise ValueError(f'train_seconds <= 0 for {bad}; use log=False')


def fig2(rows: Sequence[tables.Row], path: str, *, log: bool = False) -> str:
  """Fig. 2: mean training seconds per method, one panel per dataset.

  Args:
    rows: from `tables.aggregate` (one or more datasets).
    path: the PNG to write.
    log: log-scale seconds axis (for methods orders of magnitude apart).

  Returns:
    path.

  Raises:
    ValueError: no rows, or log with a non-positive time.
  """
  if log:
    _check_log(rows)
  palette = colors([r.name for r in rows])
  fig, panels = _panels(rows, max(4.0, 0.5 * len(palette) + 2))
  for dataset, rs, ax in panels:
    _bars(ax, rs, [r.train_seconds for r in rs],
          [r.train_seconds_std for r in rs], palette, 'training seconds')
    if log:
      _log_scale(ax, 'y')
    ax.set_title(f'Training time, {tables.dataset_title(rs, dataset)}')
  return _save(fig, path)


def fig3(rows: Sequence[tables.Row], path: str, *, log: bool = True) -> str:
  """Fig. 3: ACC against training seconds, one labelled point per method.

  Error bars are one std over seeds on both axes; one panel per dataset.

  Args:
    rows: from `tables.aggregate` (one or more datasets).
    path: the PNG to write.
    log: log-scale seconds axis.

  Returns:
    path.

  Raises:
    ValueError: no rows, or log with a non-positive time.
  """
  if log:
    _check_log(rows)
  palette = colors([r.name for r in rows])
  fig, panels = _panels(rows, 6.0)
  for dataset, rs, ax in panels:
    for r in rs:
      ax.errorbar(r.train_seconds, r.acc, xerr=r.train_seconds_std,
                  yerr=r.acc_std, fmt='o', color=palette[r.name], capsize=3)
      ax.annotate(label(r.name), (r.train_seconds, r.acc),
                  textcoords='offset points', xytext=(5, 5),
                  fontsize='small')
    if log:
      _log_scale(ax, 'x')
    ax.set_xlabel('training seconds' + (' (log scale)' if log else ''))
    ax.set_ylabel('ACC (%)')
    ax.set_title(f'Accuracy vs training time, '
                 f'{tables.dataset_title(rs, dataset)}')
    ax.grid(alpha=0.3, which='both')
  return _save(fig, path)


def heatmap(accuracy_matrix: Any, path: str, title: str) -> str:
  """The accuracy matrix R as a heatmap, in percent, with a colorbar.

  Args:
    accuracy_matrix: [T, T] fractions (the results file's field; any
      [N, T] works), [i][j] = accuracy on task j after training task i.
    path: the PNG to write.
    title: the figure's title.

  Returns:
    path.

  Raises:
    ValueError: the matrix is not two-dimensional.
  """
  r = 100 * np.asarray(accuracy_matrix, np.float64)
  return _save(_heatmap_figure(r, title), path)


def _heatmap_figure(r: np.ndarray, title: str) -> Figure:
  """The heatmap of R (percent) as a matplotlib Figure."""
  if r.ndim != 2:
    raise ValueError(f'accuracy_matrix must be 2-D; got shape {r.shape}')
  rows, cols = r.shape
  size = min(10.0, 3.0 + 0.35 * cols)
  fig = Figure(figsize=(size + 1.2, max(2.5, size * rows / cols)),
               layout='constrained')
  ax = fig.subplots()
  im = ax.imshow(r, vmin=0, vmax=100, cmap='viridis', aspect='auto')
  fig.colorbar(im, ax=ax, label='accuracy (%)')
  if cols <= 20:
    ax.set_xticks(range(cols), [str(j) for j in range(cols)])
    ax.set_yticks(range(rows), [str(i) for i in range(rows)])
    for i in range(rows):
      for j in range(cols):
        ax.text(j, i, f'{r[i, j]:.0f}', ha='center', va='center',
                fontsize=7, color='white' if r[i, j] < 60 else 'black')
  ax.set_xlabel('evaluated on task j')
  ax.set_ylabel('after training task i')
  ax.set_title(title)
  return fig


def heatmap_image(accuracy_matrix: Any, title: str) -> np.ndarray:
  """`heatmap`'s figure as an [H, W, 3] uint8 array (for a writer's
  `write_images`)."""
  r = 100 * np.asarray(accuracy_matrix, np.float64)
  fig = _heatmap_figure(r, title)
  canvas = FigureCanvasAgg(fig)
  canvas.draw()
  return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def figures(rows: Sequence[tables.Row], curves: Sequence[tables.Curve],
            folder: str, *, log_seconds: bool = True,
            heatmap_names: Sequence[str] = ('emcl',)) -> list[str]:
  """Every figure, one file per dataset (module docstring's convention).

  Args:
    rows: from `tables.aggregate`.
    curves: from `tables.aggregate_curves`.
    folder: where to write the PNGs.
    log_seconds: log-scale time axes of Fig. 2 and Fig. 3.
    heatmap_names: run names whose mean accuracy matrix is drawn.

  Returns:
    The paths written, in order.
  """
  paths = []
  for d in tables.datasets_of(rows):
    rs = [r for r in rows if r.dataset == d]
    log = log_seconds and all(r.train_seconds > 0 for r in rs)
    paths.append(fig1(rs, curves, os.path.join(folder, f'fig1_{d}.png')))
    paths.append(fig2(rs, os.path.join(folder, f'fig2_{d}.png'), log=log))
    paths.append(fig3(rs, os.path.join(folder, f'fig3_{d}.png'), log=log))
    for c in curves:
      if c.dataset == d and c.name in heatmap_names:
        paths.append(heatmap(
            c.matrix, os.path.join(folder, f'heatmap_{d}_{c.name}.png'),
            f'{tables.dataset_title(rs, d)}: {label(c.name)}, accuracy '
            f'matrix (mean of {len(c.seeds)} seeds)'))
  return paths
