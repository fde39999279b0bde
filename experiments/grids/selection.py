"""The equal-budget selection grid of experiments/selection.py: eight
settings per method, each method's shipped values among them, on top of
each benchmark's config (its glances, memory, lambda, gamma stay):

- EMCL: its learning-rate-like values (alpha0, beta) x two readings of
  Eq 8: 'task' (alpha fixed within a task, r / h at task boundaries, h
  mean-normalised, r = 1: MNIST Permutations' and Rotations' default) and
  'inverse' (alpha = alpha0 r / h at every step, h as the inner loop's,
  r = 0.1: Many Permutations' default); docs/algorithm.md #1 and #9.
- La-MAML: alpha_init x opt_lr around its official script's 0.15 / 0.3.
- MER: lr x beta x gamma around its defaults 0.03 / 0.03 / 1.0.
- ER: lr x replay size (10, MNIST's; 25, Many Permutations').

  python experiments/selection.py --workdir=studies/selection
"""

from emcl_jax.launch import grids

READINGS = {
    'task': 'meta_lr=task;meta_h_norm=mean;r=1.0',
    'inverse': 'meta_lr=inverse;meta_h_norm=same;r=0.1',
}

GRID = ' | '.join([
    *(f'method=emcl;alpha0=0.15,0.3;beta=0.03,0.1;{reading}'
      for reading in READINGS.values()),
    'method=lamaml;alpha_init=0.03,0.1,0.15,0.3;opt_lr=0.1,0.3',
    'method=mer;lr=0.03,0.1;beta=0.03,0.1;gamma=0.3,1.0',
    'method=er;lr=0.01,0.03,0.1,0.3;replay_size=10,25',
])


def get_grid():
  """The settings, one dict each (sweep.py's --grid grammar, typed by the
  sweep)."""
  return grids.parse_grid(GRID)
