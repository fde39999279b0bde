r"""Prints the Markdown results table of a folder of results JSONs.

  python experiments/summarize.py --results_dir=results

One row per (dataset, run name): ACC +- std and BWT +- std over the seeds
found, mean LA and mean training seconds.
"""

import sys

from absl import app
from absl import flags

from emcl_jax.reporting import tables

FLAGS = flags.FLAGS
flags.DEFINE_string('results_dir', 'results', 'Folder of results JSONs.')


def main(argv):
  del argv
  rows = tables.aggregate(tables.load(FLAGS.results_dir))
  if not rows:
    sys.stderr.write(f'error: no results JSON in {FLAGS.results_dir}; run '
                     'experiments/run.py --output_dir=... first\n')
    sys.exit(2)
  print(tables.markdown(rows), end='')


if __name__ == '__main__':
  app.run(main)
