"""experiments/cost.py end to end on a shrunk stream, in this process:
alternating runs, one line each, the JSON it writes, and its bad inputs
(one line, exit 2)."""

import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import pytest

import fixtures

pytestmark = pytest.mark.slow  # whole-protocol runs

SMALL = ['--config.data.num_tasks=2', '--config.data.samples_per_task=20']


def cost(*args):
  return fixtures.call('cost', *SMALL, *args)


class CostScriptTest(parameterized.TestCase):

  def test_alternating_runs_and_their_json(self):
    out = os.path.join(fixtures.tmp_dir(self), 'cost.json')
    proc = cost('--repeats=2', f'--output={out}')
    self.assertEqual(proc.returncode, 0, proc.stderr)
    lines = proc.stdout.strip().splitlines()
    self.assertEqual([l.split()[0] for l in lines[:4]],
                     ['emcl', 'finetune', 'emcl', 'finetune'])
    self.assertRegex(lines[4], r'^median train seconds: emcl [\d.]+, '
                     r'finetune \(same stream\) [\d.]+, ratio [\d.]+$')
    with open(out) as f:
      res = json.load(f)
    # The floor runs EMCL's inner stream: MNIST Permutations' EMCL memory
    # (200), replay samples per batch (10) and glances (5).
    self.assertEqual(res['stream'], {'method.memory_size': 200,
                                     'method.replay_size': 10,
                                     'method.glances': 5})
    self.assertEqual(res['sizes'], {'num_tasks': 2, 'samples_per_task': 20})
    for method in ('emcl', 'finetune'):
      self.assertLen(res['seconds'][method], 2)
      # The same seed and data twice: the same accuracy (deterministic).
      self.assertEqual(res['acc'][method][0], res['acc'][method][1])
    # A median of two runs lies between them, so the ratio lies between
    # the extreme ratios of single runs.
    e, b = res['seconds']['emcl'], res['seconds']['finetune']
    self.assertBetween(res['ratio'], min(e) / max(b), max(e) / min(b))

  @parameterized.named_parameters(
      ('baseline', ['--baseline=sgd'], "unknown method 'sgd'"),
      ('repeats', ['--repeats=0'], '--repeats must be >= 1, got 0$'),
      ('type', ['--repeats=two'], 'flag --repeats=two: invalid literal'))
  def test_bad_input_one_line_exit_2(self, args, message):
    proc = cost(*args)
    self.assertEqual(proc.returncode, 2, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    self.assertLen(lines, 1, proc.stderr)
    self.assertRegex(lines[0], '^error: .*' + message)


if __name__ == '__main__':
  absltest.main()
