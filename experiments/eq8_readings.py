r"""What each reading of Eq 8 does to an important and an unimportant
parameter: the size of its meta step as a multiple of its inner-loop
displacement, per benchmark.

  python experiments/eq8_readings.py --datasets=mnist_permutations,\
many_permutations,mnist_rotations

The meta step of Eq 10 moves theta0 by s * (theta_k - theta0) with
s = alpha * lambda * hn per parameter (hn: the importance as the inner loop
uses it, max-normalised and floored at h_min); Eq 8's reading sets alpha.
For each benchmark this trains its shipped EMCL setting (the benchmark's
config) on task 1, takes the importance h it holds, and gives s for three
parameters: the most important (hn = 1), the one at the 99th percentile of
h, the median one, and the least important (hn at the h_min floor), under
each reading at the benchmark's alpha0, lambda and alpha bounds:

- inverse (meta_h_norm same, r as the shipped 'inverse' settings, 0.1):
  alpha = alpha0 r / hn, so s = alpha0 r lambda for every parameter (h
  cancels: a Reptile step);
- constant: alpha = alpha0, s = alpha0 lambda hn (important moves more);
- task (meta_h_norm mean, r = 1): within task 1 as constant; from task 2
  alpha = clip(alpha0 r / hm) from the h at the boundary (hm: h over its
  mean), so the direction turns only at task boundaries;
- bounded (the paper's recursion, emcl_paper; mean, r = 1): alpha <-
  clip(alpha r / hm) every meta-update, so within a few batches alpha sits
  at alpha_max where hm < r and at alpha_min where hm > r.

Prints one Markdown table per benchmark (and writes them to --output).
"""

from typing import Any

from absl import flags
import jax
import numpy as np

from emcl_jax import configs
from emcl_jax import data as data_lib
from emcl_jax import files
from emcl_jax.equations import importance
from emcl_jax.launch import cli
from emcl_jax.runner import build
from emcl_jax.training import engine

FLAGS = flags.FLAGS
SCRIPT = cli.register('eq8_readings', own=('output',),
                      shared=('datasets', 'seed', 'data_dir'),
                      defaults={'datasets': ['mnist_permutations',
                                             'many_permutations',
                                             'mnist_rotations']})

INVERSE_R = 0.1  # the 'inverse' settings of experiments/grids/selection.py


def normalised(h: np.ndarray, h_min: float) -> tuple[np.ndarray, np.ndarray]:
  """(hn, hm): h over its max and over its mean (`importance.normalise`,
  the inner loop's h_norm='max' and Eq 8's meta_h_norm='mean'), each
  floored at h_min."""
  return tuple(np.maximum(np.asarray(importance.normalise(h, mode)), h_min)
               for mode in ('max', 'mean'))


def steps(hn: float, hm: float, p: Any) -> dict[str, tuple[float, float]]:
  """Each reading's meta-step factor s = alpha lambda hn for a parameter
  with importances (hn, hm), under the EMCL config `p`: (within task 1,
  from task 2 on)."""
  clip = lambda a: float(np.clip(a, p.alpha_min, p.alpha_max))  # noqa: E731
  lam = p.lam
  constant = p.alpha0 * lam * hn
  inverse = p.alpha0 * INVERSE_R * lam
  task = clip(p.alpha0 * 1.0 / hm) * lam * hn
  bounded = (p.alpha_max if hm < 1.0 else p.alpha_min if hm > 1.0
             else p.alpha0) * lam * hn
  return {'inverse': (inverse, inverse), 'constant': (constant, constant),
          'task': (constant, task), 'bounded (emcl_paper)': (bounded, bounded)}


def table(dataset: str, h: np.ndarray, p: Any) -> str:
  """The Markdown table of one benchmark's trained importance `h`."""
  hn, hm = normalised(h, p.h_min)
  order = np.argsort(h)
  picks = [('most important', order[-1]),
           ('99th percentile', order[int(0.99 * (len(h) - 1))]),
           ('median', order[len(h) // 2]), ('least important', order[0])]
  lines = [f'{data_lib.label(dataset)}: alpha0 {p.alpha0}, lambda '
           f'{p.lam}, alpha in [{p.alpha_min}, {p.alpha_max}], h_min '
           f'{p.h_min}; {np.mean(hn <= p.h_min):.0%} of the parameters at the '
           'h_min floor after task 1.', '',
           '| parameter | hn | hm | ' + ' | '.join(
               f'{r} s' for r in steps(1.0, 1.0, p)) + ' |',
           '|' + ' --- |' * (3 + len(steps(1.0, 1.0, p)))]
  for name, i in picks:
    cells = [f'{a:.3g}' if a == b else f'{a:.3g} -> {b:.3g}'
             for a, b in steps(hn[i], hm[i], p).values()]
    lines.append(f'| {name} | {hn[i]:.3g} | {hm[i]:.3g} | '
                 + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def trained_importance(dataset: str, seed: int) -> tuple[np.ndarray, Any]:
  """The shipped EMCL's importance h after task 1 of `dataset`, flat, and
  its config."""
  config = configs.resolve(cli.run_config(dataset, 'emcl', {
      'data.num_tasks': 1, 'seed': seed, 'seeds': 1}))
  s = build.setup(config, seed)
  result = engine.train_and_evaluate(
      s.method, s.apply_fn, s.params, s.tasks,
      batch_size=config.protocol.batch_size, key=s.key)
  h = np.concatenate([np.ravel(a) for a in
                      jax.tree.leaves(result.state.h)])
  return h, config.method.params


def main(argv):
  del argv  # the parser refused any argument left over
  with cli.failing():
    text = '\n'.join(table(d, *trained_importance(d, FLAGS.seed))
                     for d in FLAGS.datasets)
    if FLAGS.output:
      files.write_file(FLAGS.output, text)
  print(text, end='')


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
