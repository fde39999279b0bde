r"""Prints the Markdown results table of a folder of results JSONs.

  python experiments/summarize.py --workdir=runs

Reads every run folder's results.json under --workdir (and flat results
files of older versions). One row per (dataset, run name, config hash): ACC
+- std and BWT +- std over the seeds found, mean LA and mean training
seconds; a name run with several settings gets one row per setting, labelled
with the hash. A file that is not a readable results file is named in one
line (exit 2). --columns picks the metrics; --rank_by=val_acc orders the
rows by validation ACC (runs with --config.data.validation), best first,
and says so above the table.
"""

from absl import flags

from emcl_jax.launch import cli
from emcl_jax.launch import options  # noqa: F401  (defines the flags)
from emcl_jax.reporting import tables

FLAGS = flags.FLAGS


def main(argv):
  del argv  # the parser refused any argument left over
  with cli.failing():
    rows = tables.aggregate(tables.load(FLAGS.workdir))
    if not rows:
      raise ValueError(f'no results under {FLAGS.workdir}; run '
                       'experiments/run.py --workdir=... first')
    if FLAGS.rank_by:
      rows = tables.ranked(rows, FLAGS.rank_by)
    text = tables.markdown(rows, FLAGS.columns)
  if FLAGS.rank_by:
    print(f'Ranked by {tables.METRICS[FLAGS.rank_by]} (mean over seeds), '
          'best first.\n')
  print(text, end='')


def entry():
  """The console script `emcl-summarize` (and `python experiments/summarize.py`)."""
  cli.start(main, __doc__, 'summarize')


if __name__ == '__main__':
  entry()
