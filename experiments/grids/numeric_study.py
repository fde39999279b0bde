"""A grid over EMCL's numeric settings around the MNIST Permutations
defaults (alpha0 x gamma x beta x r, 16 settings, as shipped and with
`importance=none`: two grid programs of 16 settings x 5 seeds) and La-MAML,
in one sweep; the example grid of docs/cluster.md:

  python experiments/sweep.py --dataset=mnist_rotations --seeds=5 \
      --workdir=sweeps/numeric --grid_file=experiments/grids/numeric_study.py

(the same for mnist_permutations and many_permutations; each benchmark's
own glances, lambda and memory). The tables of docs/algorithm.md #9 come
from the smaller grids written above each of them.
"""

from emcl_jax.launch import grids as sweeps



def get_grid():
  """The settings, one dict each, written in sweep.py's --grid grammar
  (alternatives joined by '|')."""
  return sweeps.parse_grid(' | '.join([
      'alpha0=0.2,0.3;gamma=0.1,0.3;beta=0.1,0.2;r=0.5,1.0;'
      'importance=taylor,none',
      'method=lamaml',
  ]))
