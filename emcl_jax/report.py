"""Results files -> the paper's tables (mean +- std over seeds).

`load(folder)` reads every results JSON (schema in experiment.py);
`aggregate` groups them by (dataset, name) and `markdown` renders Table III's
columns: ACC +- std, BWT +- std, training seconds. The std is the population
standard deviation over seeds (numpy's default), as in the paper's tables.
"""

import glob
import json
import os
from typing import Any, NamedTuple, Sequence

import numpy as np


class Row(NamedTuple):
  """One (dataset, run name) over its seeds; ACC, BWT, LA in percent."""
  dataset: str
  name: str
  seeds: tuple[int, ...]
  acc: float
  acc_std: float
  bwt: float
  bwt_std: float
  la: float
  train_seconds: float


def load(folder: str) -> list[dict[str, Any]]:
  """Every `*.json` results file in `folder`, sorted by file name."""
  out = []
  for path in sorted(glob.glob(os.path.join(folder, '*.json'))):
    with open(path) as f:
      out.append(json.load(f))
  return out


def aggregate(results: Sequence[dict[str, Any]]) -> list[Row]:
  """Groups results by (dataset, name), in order of first appearance."""
  groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
  for res in results:
    key = (res['dataset'], res.get('name', res['method']))
    groups.setdefault(key, []).append(res)
  rows = []
  for (dataset, name), runs in groups.items():
    col = lambda k: np.array([r[k] for r in runs], np.float64)  # noqa: E731
    rows.append(Row(dataset, name, tuple(r['seed'] for r in runs),
                    float(col('acc').mean()), float(col('acc').std()),
                    float(col('bwt').mean()), float(col('bwt').std()),
                    float(col('la').mean()),
                    float(col('train_seconds').mean())))
  return rows


def markdown(rows: Sequence[Row]) -> str:
  """A Markdown table: method, ACC +- std, BWT +- std, LA, train s, seeds."""
  lines = ['| dataset | method | ACC (%) | BWT (%) | LA (%) | train s | seeds |',
           '| --- | --- | --- | --- | --- | --- | --- |']
  for r in rows:
    lines.append(f'| {r.dataset} | {r.name} | {r.acc:.2f} ± {r.acc_std:.2f} '
                 f'| {r.bwt:.2f} ± {r.bwt_std:.2f} | {r.la:.2f} '
                 f'| {r.train_seconds:.2f} | {len(r.seeds)} |')
  return '\n'.join(lines) + '\n'
