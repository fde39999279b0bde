"""The results table: numbers against hand-computed means and stds."""

import json
import os
import shutil
import tempfile

from absl.testing import absltest

from emcl_jax import report


def _result(name, seed, acc, bwt, la=80.0, seconds=1.0, method=None):
  return {'dataset': 'mnist_permutations', 'method': method or name,
          'name': name, 'seed': seed, 'acc': acc, 'bwt': bwt, 'la': la,
          'train_seconds': seconds}


class ReportTest(absltest.TestCase):

  def test_aggregate_and_markdown(self):
    folder = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, folder)
    runs = [_result('emcl', 0, 70.0, -10.0, seconds=2.0),
            _result('emcl', 1, 72.0, -12.0, seconds=4.0),
            _result('emcl_gd', 0, 60.0, -20.0, method='emcl')]
    for i, r in enumerate(runs):
      with open(os.path.join(folder, f'{i}.json'), 'w') as f:
        json.dump(r, f)
    rows = report.aggregate(report.load(folder))
    self.assertEqual([r.name for r in rows], ['emcl', 'emcl_gd'])
    emcl = rows[0]
    # mean(70, 72) = 71, population std = 1; BWT -11 +- 1; seconds 3.
    self.assertEqual((emcl.acc, emcl.acc_std, emcl.bwt, emcl.bwt_std),
                     (71.0, 1.0, -11.0, 1.0))
    self.assertEqual((emcl.seeds, emcl.train_seconds), ((0, 1), 3.0))
    table = report.markdown(rows).splitlines()
    self.assertEqual(table[2], '| mnist_permutations | emcl | 71.00 ± 1.00 | '
                     '-11.00 ± 1.00 | 80.00 | 3.00 | 2 |')
    self.assertLen(table, 4)


if __name__ == '__main__':
  absltest.main()
