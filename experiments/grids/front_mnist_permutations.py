"""The accuracy-cost front of docs/algorithm.md #9 on MNIST Permutations:
EMCL at 1, 2, 3 and 5 glances under both readings of Eq 8 that serve it
(`task`, the shipped one, and `inverse`, the single pass's), each setting
its own 5-seed program so that the seconds compare, and La-MAML beside it:

  python experiments/sweep.py --dataset=mnist_permutations --seeds=5 \
      --workdir=sweeps/front --batch_settings=false \
      --grid_file=experiments/grids/front_mnist_permutations.py
  python experiments/front.py --dataset=mnist_permutations \
      --workdir=sweeps/front

`glances=5` alone is the shipped default.
"""

from emcl_jax.launch import grids as sweeps



def get_grid():
  """The settings, one dict each, written in sweep.py's --grid grammar
  (alternatives joined by '|')."""
  return sweeps.parse_grid(' | '.join([
      'glances=5',
      'glances=1,2,3;meta_lr=task;meta_h_norm=mean;beta=0.1;r=1.0,2.0',
      'glances=1,2,3,5;meta_lr=inverse;meta_h_norm=same;beta=0.03;'
      'r=0.05,0.2',
      'method=lamaml',
  ]))
