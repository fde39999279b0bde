"""The speed benchmark: its arithmetic (experiments/timing.py: medians,
ratios, the faster mode) under scripted clocks against hand-computed values,
and experiments/bench.py end to end on a shrunk stream (every section
written; no timing asserted)."""

import json
import os
import types

from absl.testing import absltest
import pytest

import fixtures
import runs
from emcl_jax import models

# experiments/timing.py: the studies' helpers are modules beside the
# scripts, not part of the package.
timing = fixtures.study('timing')


class ScriptedClock:
  """A clock whose successive (start, stop) readings are `durations` apart:
  each timed call lasts the next scripted duration."""

  def __init__(self, durations):
    self._durations, self._now, self._started = list(durations), 0.0, False

  def __call__(self):
    if self._started:
      self._now += self._durations.pop(0)
    self._started = not self._started
    return self._now


def _timer(durations):
  # 3 tasks x 20 samples (2 batches of 10) of a tiny fine-tuning MLP.
  s = runs.setup('mnist_permutations', 'finetune', 0,
                 {'data.num_tasks': 3, 'data.samples_per_task': 20},
                 model_fn=lambda n: models.MLP(hidden=(8,), num_classes=n))
  return timing.Timer(s, clock=ScriptedClock(durations))


class TimingTest(absltest.TestCase):

  def test_head_to_head_is_the_median_of_per_round_ratios(self):
    # Per round, the median task of each method, per sample (20 samples a
    # task), then EMCL / floor; over rounds, the median ratio:
    #   floor medians 2, 2, 1 s -> 1e5, 1e5, 5e4 us per sample;
    #   emcl medians  5, 3, 4 s -> 2.5e5, 1.5e5, 2e5 us per sample;
    #   ratios 2.5, 1.5, 4.0; median 2.5 (their mean would be 2.67).
    floor = _timer([1, 3, 2, 2, 2, 2, 4, 1, 1])
    emcl = _timer([5, 4, 6, 3, 9, 3, 4, 4, 1])
    out = timing.head_to_head(floor, emcl, rounds=3, timed_tasks=3)
    self.assertEqual(out['floor_us_per_sample'], [1e5, 1e5, 5e4])
    self.assertEqual(out['emcl_us_per_sample'], [2.5e5, 1.5e5, 2e5])
    self.assertEqual(out['ratios'], [2.5, 1.5, 4.0])
    self.assertEqual(out['emcl_over_floor'], 2.5)

  def test_time_method_wraps_around_the_stream(self):
    # Binary fractions, so that the clock's sums are exact.
    timer = _timer([0.5, 0.125, 0.25, 0.375, 0.75])
    out = timing.time_method(timer, timed_tasks=0, all_tasks=True)
    self.assertEqual(out['task_seconds'], [0.5, 0.125, 0.25])
    self.assertEqual(out['samples_per_task'], 20)
    self.assertEqual(out['us_per_sample'], 0.25e6 / 20)  # the median task
    # Past the 3-task stream, timing goes on from its first task.
    self.assertEqual(timer.time(2), [0.375, 0.75])

  def test_protocol_reports_the_faster_mode(self):
    # serial loops 3, 1, 2 s (median 2), evaluation 1, .5, .6 (median .6:
    # a share of .3); overlapped 1.5, 1.8, 9 (median 1.8): 1.8 s is the
    # protocol's time.
    loops = iter([3, 1, 2, 1.5, 1.8, 9])
    evals = iter([1, .5, .6, 2, 2, 2])
    modes = []

    def run_fn(setup, overlap_eval):
      modes.append((setup, overlap_eval))
      return types.SimpleNamespace(loop_seconds=next(loops),
                                   eval_seconds=next(evals),
                                   train_seconds=0.0, compile_seconds=0.0)

    out = timing.protocol(lambda: 'setup', repeats=3, run_fn=run_fn)
    self.assertEqual(modes, [('setup', False)] * 3 + [('setup', True)] * 3)
    self.assertEqual(out['serial']['seconds'], 2)
    self.assertAlmostEqual(out['serial']['eval_share'], 0.3)
    self.assertEqual(out['overlapped']['seconds'], 1.8)
    self.assertIsNone(out['overlapped']['eval_share'])
    self.assertEqual(out['seconds'], 1.8)


class BenchScriptTest(absltest.TestCase):

  @pytest.mark.slow  # timing every section
  def test_writes_the_full_report(self):
    out = os.path.join(fixtures.tmp_dir(self), 'bench.json')
    proc = fixtures.call(
        'bench', '--methods=emcl', '--timed_tasks=2',
        '--config.data.num_tasks=3', '--config.data.samples_per_task=20',
        '--widths=16', '--seed_counts=2', '--scaling_methods=floor,emcl',
        '--protocol_repeats=1', '--rounds=3', f'--output={out}')
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    with open(out) as f:
      res = json.load(f)
    rows = {r['method']: r for r in res['table']}
    self.assertEqual(set(rows), {'floor', 'emcl'})
    for row in rows.values():
      self.assertLen(row['task_seconds'], 2)
      self.assertEqual(row['samples_per_task'], 20)
      self.assertGreater(row['us_per_sample'], 0)
      self.assertGreater(row['memory_bytes'], 0)
    self.assertLen(res['head_to_head']['ratios'], 3)
    # The README table printed at the end: one row per method timed.
    self.assertIn('| dataset | model | method | us / sample | x floor',
                  proc.stdout)
    self.assertIn(f"| mnist_permutations | mlp | emcl | "
                  f"{rows['emcl']['us_per_sample']:.1f} | "
                  f"{rows['emcl']['over_floor']:.2f} |", proc.stdout)
    self.assertIn(f"emcl_over_floor: {res['emcl_over_floor']:.2f}",
                  proc.stdout)
    self.assertLen(res['scaling_tasks']['emcl']['us_per_sample'], 3)
    self.assertEqual(set(res['scaling_width']), {'16'})
    self.assertEqual(set(res['scaling_seeds']), {'2'})
    for mode in ('serial', 'overlapped'):
      self.assertLen(res['protocol'][mode]['runs'], 1)
    self.assertIn(res['protocol_seconds'],
                  (res['protocol']['serial']['seconds'],
                   res['protocol']['overlapped']['seconds']))

if __name__ == '__main__':
  absltest.main()
