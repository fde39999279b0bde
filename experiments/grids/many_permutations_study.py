"""Many Permutations study of docs/algorithm.md #9: glances x beta x r x
the Eq 8 readings, with the importance='none' and memory-free controls.

  python experiments/sweep.py --dataset=many_permutations \
      --grid_file=experiments/grids/many_permutations_study.py
"""

from emcl_jax.launch import grids as sweeps



def get_grid():
  """The settings, one dict each, written in sweep.py's --grid grammar
  (alternatives joined by '|')."""
  return sweeps.parse_grid(' | '.join([
      'method=lamaml',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.03;r=1.0;alpha_max=1.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.1;r=1.0;alpha_max=1.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=5;beta=0.03;r=1.0;alpha_max=1.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=5;beta=0.1;r=1.0;alpha_max=1.0;alpha0=0.15',
      'glances=10;beta=0.03;r=1.0;alpha_max=1.0;meta_lr=task;meta_h_norm=mean;importance=none;alpha0=0.15',
      'glances=10;beta=0.03;r=1.0;alpha_max=1.0;meta_lr=task;meta_h_norm=mean;memory_size=0;alpha0=0.15',
      'glances=10;beta=0.1;r=1.0;alpha_max=1.0;meta_lr=task;meta_h_norm=mean;importance=none;alpha0=0.15',
      'glances=10;beta=0.1;r=1.0;alpha_max=1.0;meta_lr=task;meta_h_norm=mean;memory_size=0;alpha0=0.15',
      'glances=10;beta=0.03;r=0.01;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=10;beta=0.03;r=0.02;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=10;beta=0.03;r=0.05;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=10;beta=0.1;r=0.01;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=10;beta=0.1;r=0.02;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=10;beta=0.1;r=0.05;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=5;beta=0.03;r=0.01;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=5;beta=0.03;r=0.02;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=5;beta=0.03;r=0.05;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=5;beta=0.1;r=0.01;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=5;beta=0.1;r=0.02;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=5;beta=0.1;r=0.05;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.03;r=0.5;alpha_max=1.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.03;r=2.0;alpha_max=1.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.03;r=1.0;alpha_max=0.5;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.03;r=1.0;alpha_max=3.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=1;beta=0.03;r=1.0;alpha_max=1.0;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=1;beta=0.1;r=1.0;alpha_max=1.0;alpha0=0.15',
      'glances=1;beta=0.03;r=0.2;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=1;beta=0.1;r=0.1;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.03;r=1.0;alpha_max=1.0;meta_clip=2.0;alpha0=0.15',
      'glances=10;beta=0.03;r=0.02;importance=none;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'glances=10;beta=0.03;r=0.02;memory_size=0;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'meta_lr=task;meta_h_norm=mean;glances=10;beta=0.15;r=1.0;alpha_max=1.0;alpha0=0.15',
      'glances=10;beta=0.15;r=0.02;alpha0=0.15;meta_lr=inverse;meta_h_norm=same',
      'meta_lr=lagged;glances=10;beta=0.03;r=0.02;alpha0=0.15;meta_h_norm=same',
      'meta_lr=bounded;glances=10;beta=0.03;r=0.05;alpha_min=0.01;alpha_max=1.0;alpha0=0.15;meta_h_norm=same',
      'meta_lr=task;meta_h_norm=mean;glances=5;beta=0.1;r=1.0;alpha_max=1.0;importance=none;alpha0=0.15',
      'meta_lr=task;meta_h_norm=mean;glances=5;beta=0.1;r=1.0;alpha_max=1.0;memory_size=0;alpha0=0.15',
  ]))
