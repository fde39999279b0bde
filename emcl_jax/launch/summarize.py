r"""Prints the Markdown results table of a folder of results JSONs.

  python experiments/summarize.py --workdir=runs

Reads every run folder's results.json under --workdir (and flat results
files of older versions). One row per (dataset, run name, config hash): ACC
+- std and BWT +- std over the seeds found, mean LA and mean training
seconds; a name run with several settings gets one row per setting, labelled
with the hash. A file that is not a readable results file is named in one
line (exit 2).
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
    text = tables.markdown(rows, FLAGS.columns)
  print(text, end='')


def entry():
  """The console script `emcl-summarize` (and `python experiments/summarize.py`)."""
  cli.start(main, __doc__, 'summarize')


if __name__ == '__main__':
  entry()
