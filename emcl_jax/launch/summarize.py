r"""Prints the Markdown results table of a folder of results JSONs.

  python experiments/summarize.py --workdir=runs

Reads every run folder's results.json under --workdir (and flat results
files of older versions). One row per (dataset, run name, config hash): ACC
+- std and BWT +- std over the seeds found, mean LA and mean training
seconds; a name run with several settings gets one row per setting, labelled
with the hash.
"""

import sys

from absl import app
from absl import flags

from emcl_jax.reporting import tables

FLAGS = flags.FLAGS
flags.DEFINE_string('workdir', 'runs', 'Work directory (or folder of '
                    'results JSONs).')
flags.DEFINE_alias('results_dir', 'workdir')
flags.DEFINE_list('columns', None, 'Metrics to show, from acc, bwt, la, fwt, '
                  'forgetting, acc_class, bwt_class (default: ACC, BWT, LA).')


def main(argv):
  del argv
  try:
    rows = tables.aggregate(tables.load(FLAGS.workdir))
  except ValueError as e:
    sys.stderr.write(f'error: {e}\n')
    sys.exit(2)
  if not rows:
    sys.stderr.write(f'error: no results under {FLAGS.workdir}; run '
                     'experiments/run.py --workdir=... first\n')
    sys.exit(2)
  try:
    text = tables.markdown(rows, FLAGS.columns)
  except ValueError as e:
    sys.stderr.write(f'error: {e}\n')
    sys.exit(2)
  print(text, end='')


def entry():
  """The console script `emcl-summarize` (and `python experiments/summarize.py`)."""
  sys.modules['__main__'].__doc__ = __doc__  # absl's --help text
  app.run(main)


if __name__ == '__main__':
  entry()
