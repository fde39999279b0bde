"""Grids of hyper-parameter settings for experiments/sweep.py (pure
functions: parsing, naming, checking, the Markdown table).

A grid is alternatives separated by '|', each a product of axes separated
by ';', each axis `name=v1,v2,...`, `name` being `method` or a
hyper-parameter flag of experiments/run.py (docs/algorithm.md #9 uses it).
"""

import itertools
from typing import Any, Sequence

import numpy as np

from emcl_jax import configs
from emcl_jax import experiment

TYPES = {name: hp.type
         for name, hp in experiment.hyperparameters().items()}


def parse_value(name: str, text: str) -> Any:
  """`text` typed as run.py's flag `name` is (int, float, bool or str)."""
  if name == 'method':
    if text not in experiment.METHODS:
      raise ValueError(f'unknown method {text!r} in the grid; use one of '
                       f'{", ".join(experiment.METHODS)}')
    return text
  if name not in TYPES:
    raise ValueError(f'unknown hyper-parameter {name!r} in the grid; use a '
                     'flag of experiments/run.py')
  kind = TYPES[name]
  try:
    if kind is bool:
      if text.lower() not in ('true', 'false', '1', '0'):
        raise ValueError
      return text.lower() in ('true', '1')
    return kind(text)
  except ValueError:
    raise ValueError(f'{name}={text!r} is not a {kind.__name__}; fix the '
                     'grid') from None


def parse_axes(text: str) -> list[tuple[str, list[Any]]]:
  """'a=1,2;b=3' -> [('a', [1, 2]), ('b', [3])]."""
  axes = []
  for part in filter(None, (p.strip() for p in text.split(';'))):
    name, sep, values = part.partition('=')
    name = name.strip()
    if not sep or not values.strip():
      raise ValueError(f'grid axis {part!r} is not name=v1,v2; fix the grid')
    axes.append((name, [parse_value(name, v.strip())
                        for v in values.split(',')]))
  return axes


def parse_grid(text: str) -> list[dict[str, Any]]:
  """The settings of a --grid string, in order (see the module docstring)."""
  settings = []
  for alternative in text.split('|'):
    axes = parse_axes(alternative)
    if not axes:
      raise ValueError(f'empty alternative in the grid {text!r}; drop the '
                       "stray '|'")
    names = [n for n, _ in axes]
    for values in itertools.product(*(v for _, v in axes)):
      settings.append(dict(zip(names, values)))
  return settings


def setting_name(setting: dict[str, Any]) -> str:
  """A folder name for a setting: method first, then name=value, sorted."""
  rest = ','.join(f'{k}={setting[k]}' for k in sorted(setting)
                  if k != 'method')
  return setting['method'] + (f',{rest}' if rest else '')


def load_grid_file(path: str) -> list[dict[str, Any]]:
  """`get_grid()` of a Python file: a list of setting dicts, or a --grid
  string."""
  config = configs.load_module(path, 'get_grid', flag='--grid_file')
  try:
    grid = config.get_grid()
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'--grid_file {path}: get_grid() raised '
                     f'{type(e).__name__}: {e}') from None
  if isinstance(grid, str):
    return parse_grid(grid)
  if not isinstance(grid, list) or not all(isinstance(s, dict) for s in grid):
    raise ValueError(f'--grid_file {path}: get_grid() must return a list of '
                     "dicts like [{'beta': 0.1, 'glances': 5}] or a --grid "
                     'string')
  return grid


def expand(settings: Sequence[dict[str, Any]], fixed: dict[str, Any],
           method: str, dataset: str) -> list[dict[str, Any]]:
  """Adds the fixed values and the default method; checks every value
  and that each setting's method takes it (before anything runs)."""
  out = []
  for s in settings:
    s = {'method': method, **fixed, **s}
    # Typed as the flags are (so r=1 and r=1.0 are one setting); an unknown
    # name or a value of the wrong type is an error here.
    s = {name: parse_value(name, str(value)) for name, value in s.items()}
    overrides = {k: v for k, v in s.items() if k != 'method'}
    experiment.method_config(dataset, s['method'], overrides)
    if setting_name(s) not in (setting_name(o) for o in out):
      out.append(s)
  return out


def table(rows: Sequence[dict[str, Any]], command: str) -> str:
  """The Markdown table of the rows, best mean ACC first."""
  lines = [f'`{command}`', '',
           '| setting | seeds | ACC | BWT | LA | train s |',
           '| --- | --- | --- | --- | --- | --- |']
  order = sorted(rows, key=lambda r: (r['diverged'], -np.nan_to_num(
      r['acc'][0], nan=-1e9)))
  for r in order:
    if r['diverged']:
      lines.append(f"| {r['setting']} | - | diverged | - | - | - |")
      continue
    if not r['seeds']:
      lines.append(f"| {r['setting']} | 0 | not run | - | - | - |")
      continue
    cells = [f'{m:.2f} +- {s:.2f}' for m, s in (r['acc'], r['bwt'], r['la'])]
    lines.append(f"| {r['setting']} | {r['seeds']} | {' | '.join(cells)} | "
                 f"{r['train_seconds']:.1f} |")
  return '\n'.join(lines) + '\n'
