r"""EMCL's accuracy against its training cost over glances, from a sweep.

  python experiments/sweep.py --dataset=mnist_permutations --seeds=5 \
      --workdir=sweeps/front --batch_settings=false \
      --grid_file=experiments/grids/front_mnist_permutations.py
  python experiments/front.py --dataset=mnist_permutations \
      --workdir=sweeps/front

Reads the results of --dataset under --workdir (a sweep whose settings
vary `glances`; run it with --batch_settings=false so that each setting's
training seconds are its own). Prints, and writes to --output (default
{workdir}/{dataset}/front.md, the figure beside it as front.png):

- the most accurate EMCL setting at each number of glances, its ACC (mean
  +- std over the seeds), BWT and training seconds, and whether it is on
  the front (no setting as cheap or cheaper is as accurate);
- the shipped default (`configs.get_config(dataset, 'emcl')`) and La-MAML's
  shipped setting where the sweep ran them;
- whether any setting cheaper than the default by more than --tolerance of
  its seconds comes within --margin ACC of it (none: the default is on the
  front);
- the `importance=none` controls, which the front leaves out, each beside
  the setting it ablates and the ACC it costs.

--rank_by=val_acc ranks by validation ACC instead of test ACC (a sweep run
with --config.data.validation=0.1), and the report says which it ranks by.

A work directory without EMCL results of --dataset is one line, exit 2.
"""

import os

from absl import flags

from emcl_jax import configs
from emcl_jax import files
from emcl_jax.launch import cli
from emcl_jax.reporting import figures
from emcl_jax.reporting import tables
import front_report  # experiments/front_report.py, beside this script

FLAGS = flags.FLAGS
SCRIPT = cli.register('front', own=('margin', 'tolerance', 'output'),
            shared=('dataset', 'workdir', 'rank_by'),
            defaults={'workdir': 'sweeps'})
# --dataset, --workdir (the sweep's) and --rank_by (acc, the default, or
# val_acc) are the launch scripts' own
# (emcl_jax/launch/options.py).
flags.DEFINE_float('margin', 0.3, 'ACC within which a cheaper setting '
                   'takes the default off the front.', lower_bound=0.0)
flags.DEFINE_float('tolerance', 0.1, 'Fraction of the default\'s seconds a '
                   'setting must save to count as cheaper (timing noise).',
                   lower_bound=0.0, upper_bound=1.0)


def shipped(pts: list[front_report.Point], dataset: str, method: str):
  """The point of `method`'s shipped setting on `dataset`, or None."""
  return front_report.find(pts, method,
                           configs.flat(configs.get_config(dataset, method)))


def report(pts: list[front_report.Point], others: list[front_report.Point],
           default, margin: float, tolerance: float,
           by: str = 'acc') -> str:
  """The table and the default's verdict, as Markdown."""
  text = front_report.markdown(pts, others, default, by)
  name = 'ACC' if by == 'acc' else 'validation ACC'
  if default is None:
    return text + ('\nThe shipped default was not run in this sweep; add '
                   'its setting to the grid to place it.\n')
  near = front_report.cheaper_near(pts, default, margin, tolerance)
  if not near:
    return text + (f'\nThe shipped default ({name} {default.rank:.2f}, '
                   f'{default.seconds:.1f} s) is on the front: no setting '
                   f'cheaper by more than {tolerance:.0%} comes within '
                   f'{margin} {name} of it.\n')
  return text + (f'\nThe shipped default ({name} {default.rank:.2f}, '
                 f'{default.seconds:.1f} s) is not on the front: ' + '; '.join(
                     f'{p.name} {p.rank:.2f} in {p.seconds:.1f} s'
                     for p in near) + '.\n')


def main(argv):
  """Reads the sweep's results, prints the table, the default's verdict and
  the controls' costs, and writes them and the figure."""
  del argv  # the parser refused any argument left over
  dataset, by = FLAGS.dataset, FLAGS.rank_by or 'acc'
  with cli.failing():
    if by not in ('acc', 'val_acc'):
      raise ValueError(f'--rank_by={by} is not acc or val_acc')
    if dataset not in configs.BENCHMARKS:
      raise ValueError(f'unknown --dataset {dataset!r}; use one of '
                       f'{", ".join(configs.BENCHMARKS)}')
    pts = front_report.points(tables.load(FLAGS.workdir), dataset,
                              by)
  emcl_config = configs.flat(configs.get_config(dataset, 'emcl'))
  emcl, controls = front_report.split_controls(
      [p for p in pts if p.method == 'emcl'], emcl_config['importance'])
  if not emcl:
    cli.fail(f'no EMCL results of {dataset} under {FLAGS.workdir}; run '
             'the sweep of this script\'s --help first')
  default = front_report.find(emcl, 'emcl', emcl_config)
  lamaml = shipped(pts, dataset, 'lamaml')
  others = [] if lamaml is None else [lamaml]
  text = report(emcl, others, default, FLAGS.margin, FLAGS.tolerance,
                by)
  costs = front_report.control_costs(emcl, controls)
  if costs:
    text += ('\nWhat removing the importance costs (the controls, which '
             'the front leaves out):\n\n'
             + front_report.controls_markdown(costs))
  path = FLAGS.output or os.path.join(FLAGS.workdir, dataset, 'front.md')
  try:
    files.write_file(path, text)
    front_report.figure(
        emcl, others, default, os.path.splitext(path)[0] + '.png',
        f'EMCL over glances, '
        f'{figures.dataset_label(dataset)}', by)
  except OSError as e:
    cli.fail(f'cannot write {path}: {e.strerror or e}; choose a writable '
             '--output')
  print(text, end='')


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
