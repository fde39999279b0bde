"""The accuracy-cost front of docs/algorithm.md #9 on Many Permutations:
EMCL at 1, 2, 3, 5 and 10 glances under the `inverse` reading of Eq 8 (the
shipped one) at r 0.05, 0.1 and 0.2 (the best r falls as glances grow) and
the `task` one (MNIST Permutations'), each setting its own 5-seed program
so that the seconds compare; the `importance=none` control at two of them,
and La-MAML beside it:

  python experiments/sweep.py --dataset=many_permutations --seeds=5 \
      --workdir=sweeps/front --batch_settings=false \
      --grid_file=experiments/grids/front_many_permutations.py
  python experiments/front.py --dataset=many_permutations \
      --workdir=sweeps/front

`glances=5` alone is the shipped default.
"""

from emcl_jax.launch import grids as sweeps



def get_grid():
  """The settings, one dict each, written in sweep.py's --grid grammar
  (alternatives joined by '|')."""
  return sweeps.parse_grid(' | '.join([
      'glances=5',
      'glances=1,2,3,10',
      'glances=3,5,10;r=0.05',
      'glances=1,2,3,5;r=0.2',
      'glances=5,10;meta_lr=task;meta_h_norm=mean;alpha0=0.2;beta=0.1;'
      'r=1.0',
      'glances=5;importance=none',
      'glances=10;r=0.05;importance=none',
      'method=lamaml',
  ]))
