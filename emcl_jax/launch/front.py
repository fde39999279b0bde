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

A work directory without EMCL results of --dataset is one line, exit 2.
"""

import os

from absl import flags

from emcl_jax import configs
from emcl_jax.launch import cli
from emcl_jax.reporting import figures
from emcl_jax.reporting import front
from emcl_jax.reporting import tables

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations',
                    ' | '.join(configs.BENCHMARKS))
flags.DEFINE_string('workdir', 'sweeps', 'Work directory of the sweep.')
flags.DEFINE_float('margin', 0.3, 'ACC within which a cheaper setting '
                   'takes the default off the front.', lower_bound=0.0)
flags.DEFINE_float('tolerance', 0.1, 'Fraction of the default\'s seconds a '
                   'setting must save to count as cheaper (timing noise).',
                   lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_string('output', None, 'Markdown file (default '
                    '{workdir}/{dataset}/front.md; the PNG beside it).')


def shipped(pts: list[front.Point], dataset: str, method: str):
  """The point of `method`'s shipped setting on `dataset`, or None."""
  return front.find(pts, method,
                    configs.flat(configs.get_config(dataset, method)))


def report(pts: list[front.Point], others: list[front.Point],
           default, margin: float, tolerance: float) -> str:
  """The table and the default's verdict, as Markdown."""
  text = front.markdown(pts, others, default)
  if default is None:
    return text + ('\nThe shipped default was not run in this sweep; add '
                   'its setting to the grid to place it.\n')
  near = front.cheaper_near(pts, default, margin, tolerance)
  if not near:
    return text + (f'\nThe shipped default ({default.acc:.2f}, '
                   f'{default.seconds:.1f} s) is on the front: no setting '
                   f'cheaper by more than {tolerance:.0%} comes within '
                   f'{margin} ACC of it.\n')
  return text + (f'\nThe shipped default ({default.acc:.2f}, '
                 f'{default.seconds:.1f} s) is not on the front: ' + '; '.join(
                     f'{p.name} {p.acc:.2f} in {p.seconds:.1f} s'
                     for p in near) + '.\n')


def main(argv):
  del argv  # cli.parse_flags refused any argument left over
  dataset = FLAGS.dataset
  with cli.failing():
    if dataset not in configs.BENCHMARKS:
      raise ValueError(f'unknown --dataset {dataset!r}; use one of '
                       f'{", ".join(configs.BENCHMARKS)}')
    pts = front.points(tables.load(FLAGS.workdir), dataset)
  emcl_config = configs.flat(configs.get_config(dataset, 'emcl'))
  emcl, controls = front.split_controls(
      [p for p in pts if p.method == 'emcl'], emcl_config['importance'])
  if not emcl:
    cli.fail(f'no EMCL results of {dataset} under {FLAGS.workdir}; run '
             'the sweep of this script\'s --help first')
  default = front.find(emcl, 'emcl', emcl_config)
  lamaml = shipped(pts, dataset, 'lamaml')
  others = [] if lamaml is None else [lamaml]
  text = report(emcl, others, default, FLAGS.margin, FLAGS.tolerance)
  costs = front.control_costs(emcl, controls)
  if costs:
    text += ('\nWhat removing the importance costs (the controls, which '
             'the front leaves out):\n\n' + front.controls_markdown(costs))
  path = FLAGS.output or os.path.join(FLAGS.workdir, dataset, 'front.md')
  try:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp-{os.getpid()}'
    with open(tmp, 'w') as f:
      f.write(text)
    os.replace(tmp, path)
    figures.front_figure(
        emcl, others, default, os.path.splitext(path)[0] + '.png',
        f'EMCL over glances, '
        f'{figures.DATASET_LABELS.get(dataset, dataset)}')
  except OSError as e:
    cli.fail(f'cannot write {path}: {e.strerror or e}; choose a writable '
             '--output')
  print(text, end='')


def entry():
  """`python experiments/front.py`."""
  cli.start(main, __doc__, __name__, shared=False)


if __name__ == '__main__':
  entry()
