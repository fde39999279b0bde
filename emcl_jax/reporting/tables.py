"""Results files -> the paper's tables (mean +- std over seeds).

`load(folder)` reads every results JSON (schema in emcl_jax/runner/results.py);
`aggregate` groups them by (dataset, name) and `markdown` renders one row
per group: ACC +- std, BWT +- std, LA, training seconds. `table_iii` lays
the same numbers out as the paper's Table III (one row per method, one
column group per benchmark, plus training seconds) and `table_iv` as its
ablation table (Table IV). `average_accuracy_curve` is Fig. 1's right
panel for one run -- after training task i, the mean accuracy on tasks
0..i -- and `aggregate_curves` its mean and std over seeds.

The std is the population standard deviation over seeds (numpy's default),
as in the paper's tables. Numbers are printed with 2 decimals.
"""

import hashlib
import json
import os
from typing import Any, Iterable, NamedTuple, Optional, Sequence

import numpy as np

from emcl_jax import data as data_lib
from emcl_jax.training import workdir

# Table IV's components of each ablation run name, as README's commands
# make them: (inner LR modulation, inner regulariser, PGD, importance).
TABLE_IV_COMPONENTS = {
    'emcl': ('×', '✓', '✓', 'Taylor'),
    'emcl_gd': ('×', '✓', '×', 'Taylor'),
    'emcl_lr_modulation': ('✓', '×', '×', 'Taylor'),
    'emcl_si': ('×', '✓', '✓', 'SI'),
}
TABLE_IV_NAMES = ('emcl', 'emcl_gd', 'emcl_lr_modulation', 'emcl_si')


class Row(NamedTuple):
  """One (dataset, run name) over its seeds; ACC, BWT, LA in percent.

  Means over the seeds, `*_std` population stds; `train_seconds` is the
  mean `train_seconds` of the runs (compiled training calls only).
  `parallel_seeds` > 1: some runs trained that many seeds in one vmapped
  program, and their seconds are those of all of them together;
  `grid_settings` > 1: that program also trained that many settings (a
  grid program). `size`: '' at Table I's size, else the shrunk size
  (`size_note`).
  """
  dataset: str
  name: str
  seeds: tuple[int, ...]
  acc: float
  acc_std: float
  bwt: float
  bwt_std: float
  la: float
  train_seconds: float
  train_seconds_std: float = 0.0
  parallel_seeds: int = 1
  fwt: float = float('nan')
  fwt_std: float = float('nan')
  forgetting: float = float('nan')
  forgetting_std: float = float('nan')
  la_std: float = float('nan')
  acc_class: float = float('nan')
  acc_class_std: float = float('nan')
  bwt_class: float = float('nan')
  bwt_class_std: float = float('nan')
  val_acc: float = float('nan')
  val_acc_std: float = float('nan')
  size: str = ''
  grid_settings: int = 1

  def metric(self, name: str) -> tuple[float, float]:
    """(mean, std) of `name`, one of METRICS (NaN where results files of an
    older version lack it)."""
    return getattr(self, name), getattr(self, f'{name}_std')


# The metrics a table can show (`--columns`), with their headers.
METRICS = {'acc': 'ACC', 'bwt': 'BWT', 'la': 'LA', 'fwt': 'FWT',
           'forgetting': 'Forgetting', 'acc_class': 'class-IL ACC',
           'bwt_class': 'class-IL BWT', 'val_acc': 'val ACC'}


def check_columns(columns: Sequence[str]) -> list[str]:
  """`columns` if every one is a key of METRICS.

  Raises:
    ValueError: an unknown column (one line naming the known ones).
  """
  columns = list(columns)
  unknown = [c for c in columns if c not in METRICS]
  if unknown or not columns:
    raise ValueError(f'unknown column {unknown[0] if unknown else ""!r}; '
                     f'--columns takes {",".join(METRICS)}')
  return columns


class Curve(NamedTuple):
  """Fig. 1's average-accuracy curve of one (dataset, name) over its seeds.

  Attributes:
    dataset, name, seeds: as in `Row`.
    mean: [T] float64, percent: mean over seeds of the mean accuracy on
      tasks 0..i after training task i.
    std: [T] float64, percent: its population std over seeds.
    matrix: [T, T] float64, fractions: the accuracy matrix's mean over seeds.
  """
  dataset: str
  name: str
  seeds: tuple[int, ...]
  mean: np.ndarray
  std: np.ndarray
  matrix: np.ndarray


def load(folder: str) -> list[dict[str, Any]]:
  """Every results file under `folder` (`workdir.find_results`: the work
  directory's tree and flat results files), sorted by path.

  Raises:
    ValueError: a file that is not a readable results file (one line).
  """
  return [read_results(path) for path in workdir.find_results(folder)]


# The keys every results file (any schema version) holds.
REQUIRED = ('dataset', 'method', 'acc', 'bwt')


def read_results(path: str) -> dict[str, Any]:
  """The results file at `path`.

  Raises:
    ValueError: one line naming the file when it is not a readable results
      file (corrupt JSON, or a key of `REQUIRED` missing).
  """
  res = workdir.read_json(path)
  missing = [k for k in REQUIRED if k not in res]
  if missing:
    raise ValueError(f'{path} is not a results file (no {missing[0]}); '
                     'move it out of the folder or delete it to run it again')
  return res


def _groups(results: Sequence[dict[str, Any]]
            ) -> dict[tuple[str, str], list[dict[str, Any]]]:
  """Results by (dataset, name, config hash), in order of first appearance,
  keyed by (dataset, label): the label is the run name, followed by
  `[hash]` where one (dataset, name) has results of several settings, so a
  row never mixes settings."""
  groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
  for res in results:
    key = (res['dataset'], res.get('name', res['method']),
           workdir.results_hash(res))
    groups.setdefault(key, []).append(res)
  hashes: dict[tuple[str, str], int] = {}
  for dataset, name, _ in groups:
    hashes[dataset, name] = hashes.get((dataset, name), 0) + 1
  return {(d, n if hashes[d, n] == 1 else f'{n} [{h}]'): runs
          for (d, n, h), runs in groups.items()}


def settings_key(runs: Iterable[tuple[Any, ...]]) -> str:
  """A 10-hex digest of a table's runs, each (dataset, name, config hash,
  seed): tables of other settings (or seeds) have other keys."""
  blob = json.dumps(sorted(json.loads(json.dumps(list(r))) for r in runs))
  return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _marker(key: str) -> str:
  return f'<!-- emcl_jax table of settings {key} -->'


def keyed(text: str, key: str) -> str:
  """The table `text` with its settings key as a last, invisible line
  (a Markdown comment), which `unclaimed` reads."""
  return text + _marker(key) + '\n'


def unclaimed(path: str, key: str) -> str:
  """Where the table of `key` goes: `path` when no file is there or it
  holds the table of the same settings (`keyed`), else `path` with
  '-{key}' before its extension, so a table of other settings is never
  overwritten."""
  try:
    with open(path, encoding='utf-8') as f:
      held = f.read()
  except FileNotFoundError:
    return path
  except (OSError, UnicodeDecodeError):
    held = ''
  if _marker(key) in held:
    return path
  stem, ext = os.path.splitext(path)
  return f'{stem}-{key}{ext}'


def size_note(dataset: str, config: dict[str, Any]) -> str:
  """'' for a run at its benchmark's Table I size (`data.RECORDS`), else
  its size as 'T tasks x n' (n: training samples per task, as configured):
  a shrunk run, to be marked wherever its numbers are shown."""
  bench = data_lib.RECORDS.get(dataset)
  if bench is None:
    return ''
  t = config.get('num_tasks') or bench.num_tasks
  n = config.get('samples_per_task', bench.samples_per_task)
  if (t, n) == (bench.num_tasks, bench.samples_per_task):
    return ''
  return f'{t} tasks x {"all" if n is None else n}'


def shrunk(rows: Sequence['Row'], dataset: str) -> str:
  """' (shrunk: SIZES)' when any of `dataset`'s rows ran at another size
  than Table I's, else ''."""
  sizes = sorted({r.size for r in rows if r.dataset == dataset and r.size})
  return f' (shrunk: {", ".join(sizes)})' if sizes else ''


def dataset_title(rows: Sequence['Row'], dataset: str) -> str:
  """The dataset's display name, marked when its rows are shrunk
  (`shrunk`)."""
  return data_lib.label(dataset) + shrunk(rows, dataset)


def seconds_cell(row: 'Row') -> str:
  """Mean training seconds, marked '(all N seeds)' when N seeds trained
  as one vmapped program, '(G settings x N seeds)' when G settings did (a
  grid program): the seconds are those of the whole program."""
  cell = f'{row.train_seconds:.2f}'
  if row.grid_settings > 1:
    cell += f' ({row.grid_settings} settings x {row.parallel_seeds} seeds)'
  elif row.parallel_seeds > 1:
    cell += f' (all {row.parallel_seeds} seeds)'
  return cell


def aggregate(results: Sequence[dict[str, Any]]) -> list[Row]:
  """Groups results by (dataset, name, config hash) (`_groups`), in order of
  first appearance."""
  rows = []
  for (dataset, name), runs in _groups(results).items():
    stats = {}
    for key in (*METRICS, 'train_seconds'):
      values = np.array([r.get(key, np.nan) for r in runs], np.float64)
      stats[key], stats[f'{key}_std'] = float(values.mean()), float(
          values.std())
    rows.append(Row(dataset, name, tuple(r['seed'] for r in runs),
                    parallel_seeds=max(r.get('parallel_seeds', 1)
                                       for r in runs),
                    size=size_note(dataset, runs[0].get('config', {})),
                    grid_settings=max(r.get('grid_settings', 1)
                                      for r in runs),
                    **stats))
  return rows


def ranked(rows: Sequence[Row], metric: str) -> list[Row]:
  """`rows` by mean `metric` (a key of METRICS), best first (lowest for
  forgetting), within each dataset (datasets in order of appearance); rows
  without it (NaN) last.

  Raises:
    ValueError: an unknown metric, or one no row has.
  """
  if metric not in METRICS:
    raise ValueError(f'unknown metric {metric!r}; --rank_by takes '
                     f'{",".join(METRICS)}')
  if all(np.isnan(r.metric(metric)[0]) for r in rows):
    raise ValueError(f'no run has {metric}'
                     + (' (run with --config.data.validation=0.1)'
                        if metric.startswith('val_') else ''))
  sign = 1.0 if metric == 'forgetting' else -1.0
  order = datasets_of(rows)
  return sorted(rows, key=lambda r: (order.index(r.dataset), np.nan_to_num(
      sign * r.metric(metric)[0], nan=np.inf)))


def datasets_of(rows: Sequence[Row]) -> list[str]:
  """The datasets of `rows`, in order of first appearance."""
  return list(dict.fromkeys(r.dataset for r in rows))


def markdown(rows: Sequence[Row], columns: Optional[Sequence[str]] = None
             ) -> str:
  """A Markdown table: method, ACC +- std, BWT +- std, LA, train s, seeds;
  with `columns` (keys of METRICS), those metrics as mean +- std instead.
  A shrunk run's method is marked with its size; the seconds of seeds
  trained together, as their total (`seconds_cell`)."""
  name = lambda r: r.name + (f' (shrunk: {r.size})' if r.size else '')  # noqa: E731
  if columns is None:
    lines = ['| dataset | method | ACC (%) | BWT (%) | LA (%) | train s '
             '| seeds |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    for r in rows:
      lines.append(f'| {r.dataset} | {name(r)} | {r.acc:.2f} ± '
                   f'{r.acc_std:.2f} | {r.bwt:.2f} ± {r.bwt_std:.2f} '
                   f'| {r.la:.2f} | {seconds_cell(r)} | {len(r.seeds)} |')
    return '\n'.join(lines) + '\n'
  columns = check_columns(columns)
  header = (['dataset', 'method'] + [f'{METRICS[c]} (%)' for c in columns]
            + ['train s', 'seeds'])
  body = [[r.dataset, name(r)]
          + ['{:.2f} ± {:.2f}'.format(*r.metric(c)) for c in columns]
          + [seconds_cell(r), str(len(r.seeds))] for r in rows]
  return '\n'.join(markdown_table(header, body)) + '\n'


def markdown_table(header: Sequence[str],
                   body: Sequence[Sequence[str]]) -> list[str]:
  """The lines of a Markdown table: the header, its rule, one line per row
  of cells."""
  lines = ['| ' + ' | '.join(header) + ' |',
           '| ' + ' | '.join(['---'] * len(header)) + ' |']
  lines += ['| ' + ' | '.join(cells) + ' |' for cells in body]
  return lines


def table_iii(rows: Sequence[Row], datasets: Optional[Sequence[str]] = None,
              names: Optional[Sequence[str]] = None,
              columns: Optional[Sequence[str]] = None) -> str:
  """Table III: one row per method, one column group per dataset.

  Each dataset has two columns: `ACC ± std / BWT ± std` in percent (mean and
  population std over seeds) and the mean training seconds per run
  (`train_seconds`, compiled training calls only). A method without results
  on a dataset gets `-`. The best mean ACC of each dataset is in bold.

  Args:
    rows: from `aggregate`.
    datasets: the column groups, in order; None: every dataset of `rows`.
    names: the rows (run names), in order; None: every name of `rows` on
      `datasets`, in order of first appearance.
    columns: keys of METRICS: each dataset gets one `mean ± std` column per
      metric (and its seconds) instead of the paper's `ACC / BWT`.

  Returns:
    A caption line, a blank line and the Markdown table, ending in a newline.

  Raises:
    ValueError: no rows for the datasets and names asked for.
  """
  datasets = list(datasets_of(rows) if datasets is None else datasets)
  cell = {(r.dataset, r.name): r for r in rows if r.dataset in datasets}
  if names is None:
    names = list(dict.fromkeys(name for _, name in cell))
  if not any((d, n) in cell for d in datasets for n in names):
    raise ValueError(f'no results for datasets {datasets} and names {names}')
  best = {d: max((cell[d, n].acc for n in names if (d, n) in cell),
                 default=None) for d in datasets}
  columns = None if columns is None else check_columns(columns)
  header = ['method']
  for d in datasets:
    title = d + shrunk(rows, d)
    if columns is None:
      header += [f'{title} ACC / BWT (%)', f'{d} train s']
    else:
      header += ([f'{title} {METRICS[c]} (%)' for c in columns]
                 + [f'{d} train s'])
  body = []
  for n in names:
    cells = [n]
    for d in datasets:
      r = cell.get((d, n))
      if r is None:
        cells += ['-'] * (2 if columns is None else len(columns) + 1)
        continue
      acc = f'{r.acc:.2f} ± {r.acc_std:.2f}'
      if r.acc == best[d]:
        acc = f'**{acc}**'
      seconds = seconds_cell(r)
      if columns is None:
        cells += [f'{acc} / {r.bwt:.2f} ± {r.bwt_std:.2f}', seconds]
      else:
        cells += [acc if c == 'acc' else '{:.2f} ± {:.2f}'.format(
            *r.metric(c)) for c in columns] + [seconds]
    body.append(cells)
  counts = {d: sorted({len(cell[d, n].seeds) for n in names
                        if (d, n) in cell}) for d in datasets}
  seeds = ', '.join(f'{d} {"/".join(map(str, c))}'
                    for d, c in counts.items() if c)
  shown = ('ACC (%) and BWT (%)' if columns is None else
           ', '.join(f'{METRICS[c]} (%)' for c in columns))
  caption = (f'Table III: {shown}, mean ± population std over '
             'seeds (best ACC in bold), and mean training '
             f'seconds per run (compiled training calls only). Seeds: {seeds}.')
  if any(cell[d, n].parallel_seeds > 1 for d in datasets for n in names
         if (d, n) in cell):
    caption += (' "(all N seeds)": N seeds trained together in one vmapped '
                'program; the seconds are those of all N.')
  return '\n'.join([caption, ''] + markdown_table(header, body)) + '\n'


def table_iv(rows: Sequence[Row], dataset: str,
             names: Sequence[str] = TABLE_IV_NAMES) -> str:
  """Table IV: the ablations of EMCL on one dataset.

  One row per run name of `names` that has results on `dataset`, with the
  components it keeps (`TABLE_IV_COMPONENTS`; `?` for a name not listed
  there), ACC
  and BWT (mean ± population std over seeds, percent), ΔACC against the
  first name present, and mean training seconds. A footnote line names the
  missing ones.

  Args:
    rows: from `aggregate`.
    dataset: the benchmark.
    names: the ablation run names, in order.

  Returns:
    A caption line, a blank line, the Markdown table and, if some names
    have no results, a blank line and a footnote line; ends in a newline.

  Raises:
    ValueError: none of `names` has results on `dataset`.
  """
  cell = {r.name: r for r in rows if r.dataset == dataset}
  present = [n for n in names if n in cell]
  missing = [n for n in names if n not in cell]
  if not present:
    raise ValueError(f'no results on {dataset} for any of {list(names)}')
  ref = cell[present[0]]
  header = ['name', 'inner LR modulation', 'inner regulariser', 'PGD',
            'importance', 'ACC (%)', 'ΔACC', 'BWT (%)', 'train s', 'seeds']
  body = []
  for n in present:
    r = cell[n]
    body.append([n, *TABLE_IV_COMPONENTS.get(n, ('?',) * 4),
                 f'{r.acc:.2f} ± {r.acc_std:.2f}', f'{r.acc - ref.acc:+.2f}',
                 f'{r.bwt:.2f} ± {r.bwt_std:.2f}', f'{r.train_seconds:.2f}',
                 str(len(r.seeds))])
  caption = (f'Table IV: ablations of EMCL on {dataset}. ACC (%) and BWT (%) '
             'are mean ± population std over seeds, ΔACC the mean ACC minus '
             f"{ref.name}'s, train s the mean training seconds per run.")
  lines = [caption, ''] + markdown_table(header, body)
  if missing:
    lines += ['', f'Missing (no results on {dataset}): {", ".join(missing)}.']
  return '\n'.join(lines) + '\n'


def average_accuracy_curve(accuracy_matrix: Any) -> np.ndarray:
  """Fig. 1 (right) for one run: [T] percent, entry i = mean(R[i, :i+1]).

  Args:
    accuracy_matrix: [T, T] fractions, [i][j] = accuracy on task j after
      training task i (the results file's `accuracy_matrix`).

  Raises:
    ValueError: the matrix is not square (e.g. `joint`'s single row).
  """
  r = np.asarray(accuracy_matrix, np.float64)
  if r.ndim != 2 or r.shape[0] != r.shape[1]:
    raise ValueError(f'accuracy_matrix must be [T, T]; got shape {r.shape}')
  return 100 * np.array([r[i, :i + 1].mean() for i in range(r.shape[0])])


def aggregate_curves(results: Sequence[dict[str, Any]]) -> list[Curve]:
  """`average_accuracy_curve` per (dataset, name), mean and std over seeds.

  Groups as `aggregate` does. Groups whose accuracy matrices are not square
  (`joint`, trained on one shuffled stream) have no curve and are skipped.

  Raises:
    ValueError: the seeds of one group have different numbers of tasks.
  """
  out = []
  for (dataset, name), runs in _groups(results).items():
    mats = [np.asarray(r['accuracy_matrix'], np.float64) for r in runs]
    if any(m.ndim != 2 or m.shape[0] != m.shape[1] for m in mats):
      continue
    if len({m.shape for m in mats}) != 1:
      raise ValueError(f'{dataset}/{name}: the seeds have different numbers '
                       f'of tasks: {[m.shape[0] for m in mats]}')
    curves = np.stack([average_accuracy_curve(m) for m in mats])
    out.append(Curve(dataset, name, tuple(r['seed'] for r in runs),
                     curves.mean(0), curves.std(0), np.mean(mats, 0)))
  return out
