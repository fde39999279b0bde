"""The --grid grammar of experiments/sweep.py (pure functions: parsing,
naming, checking, the Markdown table).

A grid is alternatives separated by '|', each a product of axes separated
by ';', each axis `path=v1,v2,...`, `path` being `method` (the method's
name) or a setting of the run config (`method.beta`, `data.num_tasks`,
`protocol.epochs`; `--print_config` lists them). A bare name is a method
setting: `beta=0.1` is `method.beta=0.1` (docs/algorithm.md #9 uses it).
Values are typed as the setting is, so `r=1` and `method.r=1.0` are one
setting.
"""

import itertools
from typing import Any, Callable, Sequence

import numpy as np

from emcl_jax import configs
from emcl_jax.configs import schema
from emcl_jax.methods import RECORDS
from emcl_jax.reporting import tables


def full_path(name: str) -> str:
  """`method.beta` for `beta`; config paths as they are."""
  if name in ('method', 'seed', 'seeds') or '.' in name:
    return name
  return f'method.{name}'


def parse_axes(text: str) -> list[tuple[str, list[str]]]:
  """'a=1,2;b=3' -> [('method.a', ['1', '2']), ('method.b', ['3'])]."""
  axes = []
  for part in filter(None, (p.strip() for p in text.split(';'))):
    name, sep, values = part.partition('=')
    name = name.strip()
    if not sep or not values.strip() or not name:
      raise ValueError(f'grid axis {part!r} is not path=v1,v2; fix the grid')
    if full_path(name) in (n for n, _ in axes):
      raise ValueError(f'grid axis {full_path(name)} is given twice in '
                       f'{text!r}; list its values once, path=v1,v2')
    axes.append((full_path(name), [v.strip() for v in values.split(',')]))
  return axes


def parse_grid(text: str) -> list[dict[str, Any]]:
  """The settings of a --grid string, in order (see the module docstring);
  values are still text (`expand` types them)."""
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
  """A folder name for a setting: the method first, then path=value sorted
  (a method setting by its field name: `emcl,beta=0.1,data.num_tasks=3`)."""
  def short(path):
    return path[len('method.'):] if path.startswith('method.') else path
  rest = ','.join(f'{short(k)}={setting[k]}' for k in sorted(
      setting, key=short) if k != 'method')
  return setting['method'] + (f',{rest}' if rest else '')


def load_grid_file(path: str) -> list[dict[str, Any]]:
  """`get_grid()` of a Python file: a list of setting dicts, keys as grid
  paths (`[{'method': 'lamaml'}, {'method.beta': 0.1}]`).

  Raises:
    ValueError (ConfigError): no such file, no get_grid, it raises, or it
      returns anything else than a non-empty list of dicts.
  """
  module = configs.load_module(path, 'get_grid', flag='--grid_file')
  try:
    grid = module.get_grid()
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'--grid_file {path}: get_grid() raised '
                     f'{type(e).__name__}: {e}') from None
  if (not isinstance(grid, list) or not grid
      or not all(isinstance(s, dict) for s in grid)):
    raise ValueError(f'--grid_file {path}: get_grid() must return a '
                     "non-empty list of dicts like [{'method.beta': 0.1, "
                     "'method.glances': 5}, {'method': 'lamaml'}]")
  return [{full_path(k): v for k, v in s.items()} for s in grid]


def expand(settings: Sequence[dict[str, Any]], fixed: dict[str, Any],
           method: str,
           build: Callable[[str, dict[str, Any]], configs.RunConfig]
           ) -> list[tuple[dict[str, Any], configs.RunConfig]]:
  """Each distinct setting (the fixed values and the default method added,
  values typed as their settings are) with its resolved run config,
  `build(method, {path: value})`; every value is checked before anything
  runs.

  Raises:
    ValueError (ConfigError): an unknown method or setting, a bad value.
  """
  out, names = [], set()
  for s in settings:
    s = {'method': method, **{full_path(k): v for k, v in fixed.items()},
         **s}
    if s['method'] not in RECORDS:
      raise schema.ConfigError(
          f"unknown method {s['method']!r} in the grid; use one of "
          f'{", ".join(RECORDS)}')
    values = {k: v for k, v in s.items() if k != 'method'}
    config = build(s['method'], values)
    typed = {'method': s['method'],
             **{k: schema.get(config, k) for k in values}}
    if setting_name(typed) not in names:
      names.add(setting_name(typed))
      out.append((typed, config))
  return out


def summarize(outcome: Any) -> dict[str, Any]:
  """A table row of one setting's `runner.Outcome`: validation ACC (NaN
  without a validation split), ACC, BWT and LA (mean, std) over its
  finished seeds, and the longest training seconds."""
  runs = outcome.results
  row = {'setting': outcome.config.output.name, 'seeds': len(runs),
         'diverged': outcome.error is not None}
  for key in ('val_acc', 'acc', 'bwt', 'la'):
    values = np.array([r.get(key, np.nan) for r in runs] or [np.nan])
    row[key] = (float(values.mean()), float(values.std()))
  row['train_seconds'] = (max(r['train_seconds'] for r in runs) if runs
                          else float('nan'))
  return row


def table(rows: Sequence[dict[str, Any]], command: str) -> str:
  """The Markdown table of the rows, best first: by mean validation ACC
  when the runs hold out a validation split (a column of its own), else by
  mean test ACC; the line above the table says which."""
  val = any(not np.isnan(r['val_acc'][0]) for r in rows)
  key = 'val_acc' if val else 'acc'
  metrics = ('val_acc',) * val + ('acc', 'bwt', 'la')
  head = ['setting', 'seeds'] + ['val ACC'] * val + ['ACC', 'BWT', 'LA',
                                                      'train s']
  order = sorted(rows, key=lambda r: (r['diverged'], -np.nan_to_num(
      r[key][0], nan=-1e9)))
  body = []
  for r in order:
    if r['diverged'] or not r['seeds']:
      # The ACC column says why; the other cells are empty.
      body.append([r['setting'], '-' if r['diverged'] else '0',
                   'diverged' if r['diverged'] else 'not run']
                  + ['-'] * len(metrics))
      continue
    body.append([r['setting'], str(r['seeds'])]
                + [f'{r[k][0]:.2f} +- {r[k][1]:.2f}' for k in metrics]
                + [f"{r['train_seconds']:.1f}"])
  lines = [f'`{command}`', '',
           f"Ranked by {'validation' if val else 'test'} ACC (mean over "
           'seeds), best first. train s: the whole program a setting ran '
           'in (all its seeds together, and in a grid program every setting '
           'of it), compiled training calls only.', '',
           *tables.markdown_table(head, body)]
  return '\n'.join(lines) + '\n'
