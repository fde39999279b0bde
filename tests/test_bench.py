"""experiments/bench.py end to end on a shrunk stream: the JSON it writes
has every section, with consistent numbers (no timing is asserted)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile

from absl.testing import absltest
import pytest
import numpy as np

pytestmark = pytest.mark.slow  # subprocess and whole-protocol runs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BenchTest(absltest.TestCase):

  def test_writes_the_full_report(self):
    folder = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, folder, True)
    out = os.path.join(folder, 'bench.json')
    proc = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'experiments', 'bench.py'),
         '--methods=emcl,agem', '--timed_tasks=2', '--num_tasks=3',
         '--samples_per_task=20', '--widths=16', '--seeds=1,2',
         '--scaling_methods=floor,emcl', '--protocol_repeats=1', '--rounds=3',
         f'--output={out}'],
        env=dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS='cpu'),
        capture_output=True, text=True, timeout=900, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    with open(out) as f:
      res = json.load(f)
    rows = {r['method']: r for r in res['table']}
    self.assertEqual(set(rows), {'floor', 'emcl', 'agem'})
    for row in rows.values():
      self.assertLen(row['task_seconds'], 2)
      self.assertEqual(row['samples_per_task'], 20)
      self.assertGreater(row['us_per_sample'], 0)
      self.assertGreater(row['memory_bytes'], 0)
    self.assertEqual(rows['floor']['over_floor'], 1.0)
    h2h = res['head_to_head']
    self.assertLen(h2h['ratios'], 3)
    np.testing.assert_allclose(
        h2h['ratios'], np.divide(h2h['emcl_us_per_sample'],
                                 h2h['floor_us_per_sample']))
    self.assertEqual(res['emcl_over_floor'], np.median(h2h['ratios']))
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
    self.assertEqual(set(res['scaling_seeds']), {'1', '2'})
    protocol = res['protocol']
    self.assertEqual(res['protocol_seconds'],
                     min(protocol['serial']['seconds'],
                         protocol['overlapped']['seconds']))
    self.assertGreater(protocol['serial']['eval_share'], 0)
    self.assertLess(protocol['serial']['eval_share'], 1)


if __name__ == '__main__':
  absltest.main()
