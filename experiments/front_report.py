"""Accuracy against training cost: EMCL's front over glances.

Glances (meta-updates per incoming batch, docs/algorithm.md #7) are what
EMCL's training time scales with. Given the results of a sweep whose
settings vary glances and the other settings at each, `points` reduces
them to one point per setting (mean ACC over the seeds, mean training
seconds), `best_per_glances` keeps the most accurate setting at each
number of glances, and `front` the settings that no other setting beats
at less or equal cost. `cheaper_near` is the check the shipped default is
held to: no setting markedly cheaper within `margin` ACC of it.
`split_controls` keeps the `importance=none` controls out of all of that,
and `control_costs` gives what removing the importance costs.

Pure functions over results dictionaries (`tables.load`), and `figure`,
which draws them (matplotlib, through `emcl_jax.reporting.figures`).

A helper of experiments/front.py, not a script: the script imports it as
`front_report`, found beside it (a script's folder is the first entry of
sys.path).
"""

import json
from typing import Any, NamedTuple, Optional, Sequence

from matplotlib.figure import Figure
import numpy as np

from emcl_jax.reporting import figures
from emcl_jax.training import workdir


class Point(NamedTuple):
  """One setting over its seeds: ACC (%) mean and population std, BWT
  mean, mean training seconds (compiled training calls; all the seeds of a
  setting trained as one vmapped program share them), the run config
  (`configs.flat`, as its results file records it), and `rank`: the mean
  of the metric the front ranks by (`points`' `by`: test ACC, or
  validation ACC for runs that hold out a validation split)."""
  name: str
  method: str
  config_hash: str
  glances: Optional[int]
  seeds: tuple[int, ...]
  acc: float
  acc_std: float
  bwt: float
  seconds: float
  config: dict[str, Any]
  rank: float = float('nan')


def points(results: Sequence[dict[str, Any]], dataset: str,
           by: str = 'acc') -> list[Point]:
  """One Point per config hash of `dataset`'s results, in order of first
  appearance (a setting run under two names is one point, named by the
  first), ranked by `by` ('acc' or 'val_acc').

  Raises:
    ValueError: a run without `by` (one line naming it).
  """
  groups: dict[str, list[dict[str, Any]]] = {}
  for res in results:
    if res['dataset'] == dataset:
      groups.setdefault(workdir.results_hash(res), []).append(res)
  out = []
  for chash, runs in groups.items():
    acc = np.array([r['acc'] for r in runs], np.float64)
    if any(by not in r for r in runs):
      raise ValueError(f"{runs[0].get('name')} [{chash}] has no {by}; rank "
                       'by acc, or rerun the sweep with '
                       '--config.data.validation=0.1')
    glances = runs[0].get('config', {}).get('glances')
    out.append(Point(
        name=runs[0].get('name', runs[0]['method']),
        method=runs[0]['method'], config_hash=chash,
        glances=None if glances is None else int(glances),
        seeds=tuple(sorted(r['seed'] for r in runs)),
        acc=float(acc.mean()), acc_std=float(acc.std()),
        bwt=float(np.mean([r['bwt'] for r in runs])),
        seconds=float(np.mean([r['train_seconds'] for r in runs])),
        config=runs[0].get('config', {}),
        rank=float(np.mean([r[by] for r in runs]))))
  return out


def best_per_glances(pts: Sequence[Point]) -> list[Point]:
  """The best-ranked point at each number of glances, fewest glances
  first (points without glances are left out)."""
  best: dict[int, Point] = {}
  for p in pts:
    if p.glances is not None and (p.glances not in best
                                  or p.rank > best[p.glances].rank):
      best[p.glances] = p
  return [best[g] for g in sorted(best)]


def front(pts: Sequence[Point]) -> list[Point]:
  """The points no other point dominates (as cheap or cheaper and at least
  as well ranked, one of the two strictly), cheapest first: the ranked
  metric rises along it."""
  out, best = [], -np.inf
  for p in sorted(pts, key=lambda p: (p.seconds, -p.rank)):
    if p.rank > best:
      out.append(p)
      best = p.rank
  return out


def cheaper_near(pts: Sequence[Point], target: Point, margin: float,
                 tolerance: float = 0.1) -> list[Point]:
  """The points cheaper than `target` by more than `tolerance` of its
  seconds whose ranked metric is within `margin` of its own or above it.

  Empty: `target` sits on the front in the sense docs/algorithm.md #9 asks
  of the shipped default. Settings at the same glances take the same
  number of steps; `tolerance` keeps timing noise between them from
  deciding.
  """
  return [p for p in pts
          if p.seconds < (1.0 - tolerance) * target.seconds
          and p.rank >= target.rank - margin]


# Where the data came from, resolved at run time ('auto' -> 'bundled'):
# not part of what a setting is.
_SOURCE_KEYS = ('data_source', 'data_dir')


def find(pts: Sequence[Point], method: str,
         config: dict[str, Any]) -> Optional[Point]:
  """The point of `method` whose recorded config equals `config` (a
  `configs.flat` dict) in every setting but the data's source, or None."""
  want = {k: v for k, v in json.loads(json.dumps(config, default=str)).items()
          if k not in _SOURCE_KEYS}
  for p in pts:
    if p.method == method and all(p.config.get(k) == v
                                  for k, v in want.items()):
      return p
  return None


def split_controls(pts: Sequence[Point], importance: str
                   ) -> tuple[list[Point], list[Point]]:
  """EMCL's points as (settings, controls): the settings use the shipped
  importance `importance` ('taylor', Eq 13's h); the controls replace it
  (`importance=none`, the ablation of docs/algorithm.md #9) and ask what h
  is worth, so the front does not rank them. A point that records no
  importance counts as a setting."""
  settings, controls = [], []
  for p in pts:
    same = p.config.get('importance', importance) == importance
    (settings if same else controls).append(p)
  return settings, controls


def control_costs(settings: Sequence[Point], controls: Sequence[Point]
                  ) -> list[tuple[Point, Point, float]]:
  """Each control with the setting it ablates (the same config but for
  `importance`) and what the ablation costs: the setting's ACC minus the
  control's. Controls whose setting was not run are left out."""
  out = []
  for c in controls:
    base = find(settings, c.method, {k: v for k, v in c.config.items()
                                     if k != 'importance'})
    if base is not None:
      out.append((c, base, base.acc - c.acc))
  return out


def controls_markdown(costs: Sequence[tuple[Point, Point, float]]) -> str:
  """`control_costs` as a Markdown table, one row per control."""
  lines = ['| control | ACC | setting | ACC | cost |',
           '| --- | --- | --- | --- | --- |']
  for c, base, cost in costs:
    lines.append(f'| {c.name} | {c.acc:.2f} +- {c.acc_std:.2f} | '
                 f'{base.name} | {base.acc:.2f} +- {base.acc_std:.2f} | '
                 f'{cost:.2f} |')
  return '\n'.join(lines) + '\n'


def markdown(pts: Sequence[Point], others: Sequence[Point],
             default: Optional[Point], by: str = 'acc') -> str:
  """The table: the best of EMCL's points `pts` at each number of glances
  and the shipped default where it is not one of them (each marked when it
  is on the front), then `others` (La-MAML) for comparison. The line
  above the table says what the front ranks by; ranked by validation ACC,
  it has a column of its own."""
  keys = {p.config_hash for p in front(pts)}
  rows = best_per_glances(pts)
  if default is not None and default not in rows:
    rows = sorted([*rows, default], key=lambda p: (p.glances, -p.rank))
  val = by == 'val_acc'
  head = (['glances', 'setting', 'seeds'] + ['val ACC'] * val
          + ['ACC', 'BWT', 'train s', 'on the front'])
  lines = [f"Ranked by {'validation' if val else 'test'} ACC (mean over "
           'seeds).', '', '| ' + ' | '.join(head) + ' |',
           '|' + ' --- |' * len(head)]
  for p in [*rows, *others]:
    if p.method != 'emcl':
      mark = '-'
    else:
      mark = 'yes' if p.config_hash in keys else 'no'
      if default is not None and p.config_hash == default.config_hash:
        mark += ', the default'
    glances = '-' if p.glances is None else str(p.glances)
    lines.append(f'| {glances} | {p.name} | {len(p.seeds)} | '
                 + (f'{p.rank:.2f} | ' if val else '') +
                 f'{p.acc:.2f} +- {p.acc_std:.2f} | {p.bwt:.2f} | '
                 f'{p.seconds:.1f} | {mark} |')
  return '\n'.join(lines) + '\n'


def figure(pts: Sequence[Point], others: Sequence[Point],
           default: Optional[Point], path: str, title: str,
           by: str = 'acc') -> str:
  """EMCL's settings as ACC against training seconds (log x), their front
  as a line, the best setting at each number of glances labelled, the
  shipped default ringed, and `others` (La-MAML) as labelled points.

  Args:
    pts: EMCL's settings (`points`).
    others: the methods to compare with.
    default: the shipped default's point, or None.
    path: the PNG to write.
    title: the figure's title.
    by: what the front ranks by (`points`); the axis is test ACC.

  Returns:
    path.

  Raises:
    ValueError: no points, or a non-positive time.
  """
  if not pts:
    raise ValueError('no EMCL settings to draw')
  if not all(p.seconds > 0 for p in (*pts, *others)):
    raise ValueError('training seconds <= 0; the axis is logarithmic')
  fig = Figure(figsize=(6.5, 4.5), layout='constrained')
  ax = fig.subplots()
  ax.scatter([p.seconds for p in pts], [p.acc for p in pts], s=14,
             color='0.6', label='EMCL settings', zorder=2)
  line = front(pts)
  ax.plot([p.seconds for p in line], [p.acc for p in line], '-',
          color='tab:blue', zorder=3, label='front' if by == 'acc' else
          'front (ranked by validation ACC)')
  for p in best_per_glances(pts):
    ax.errorbar(p.seconds, p.acc, yerr=p.acc_std, fmt='o', color='tab:blue',
                capsize=3, zorder=4)
    ax.annotate(f'{p.glances} glance{"s" if p.glances != 1 else ""}',
                (p.seconds, p.acc), textcoords='offset points',
                xytext=(5, -12), fontsize='small')
  if default is not None:
    ax.plot(default.seconds, default.acc, 'o', markersize=12,
            markerfacecolor='none', markeredgecolor='black',
            label='shipped default', zorder=5)
  for p in others:
    ax.errorbar(p.seconds, p.acc, yerr=p.acc_std, fmt='s', color='tab:red',
                capsize=3, zorder=4)
    ax.annotate(figures.label(p.method), (p.seconds, p.acc),
                textcoords='offset points', xytext=(5, 5), fontsize='small')
  # The axis and the file as the paper's figures have them.
  figures._log_scale(ax, 'x')  # pylint: disable=protected-access
  ax.set_xlabel('training seconds (log scale)')
  ax.set_ylabel('test ACC (%)')
  ax.set_title(title)
  ax.grid(alpha=0.3, which='both')
  ax.legend(fontsize='small', loc='lower right')
  return figures._save(fig, path)  # pylint: disable=protected-access
