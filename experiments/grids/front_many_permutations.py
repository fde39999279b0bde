"""The accuracy-cost front of docs/algorithm.md #9 on Many Permutations:
EMCL at 1, 2, 3, 5 and 10 glances under the `task` reading of Eq 8 (the
shipped one; it fails in a single pass, 27-32 ACC) and the `inverse` one
(the single pass's, and the most accurate at 10 glances), each setting its
own 5-seed program so that the seconds compare, and La-MAML beside it:

  python experiments/sweep.py --dataset=many_permutations --seeds=5 \
      --workdir=sweeps/front --batch_settings=false \
      --grid_file=experiments/grids/front_many_permutations.py
  python experiments/front.py --dataset=many_permutations \
      --workdir=sweeps/front

`glances=10` alone is the shipped default.
"""


def get_grid():
  """One --grid string: alternatives joined by '|' (experiments/sweep.py)."""
  return ' | '.join([
      'glances=10',
      'glances=2,3,5;meta_lr=task;meta_h_norm=mean;beta=0.1;r=1.0',
      'glances=1,2,3,5,10;meta_lr=inverse;meta_h_norm=same;alpha0=0.15;'
      'beta=0.03;r=0.05',
      'glances=1,2,3,5;meta_lr=inverse;meta_h_norm=same;alpha0=0.15;'
      'beta=0.03;r=0.2',
      'glances=3,5;meta_lr=inverse;meta_h_norm=same;alpha0=0.15;'
      'beta=0.03;r=0.1',
      'method=lamaml',
  ])
