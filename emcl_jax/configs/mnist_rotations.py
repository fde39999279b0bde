"""MNIST Rotations (20 tasks x 1000, single head, the MLP): not in the EMCL
paper; GEM's, MER's and La-MAML's third MNIST benchmark. Every method takes
its MNIST Permutations values (La-MAML's script, `run_experiments.sh`, runs
`lamaml` on Rotations with the same flags as on Permutations: 200 memories,
5 glances, opt_lr 0.3, alpha_init 0.15, learned LRs), except EMCL's gamma
(and EMCL-SI's, which shares its row).

gamma, Eq 21's proximal step, is 0.03 here against 0.3 on Permutations,
from the gamma study of docs/algorithm.md #9 (5 seeds, bundled data, one
sweep with `lamaml`; gamma chosen on seeds 0-4, checked on seeds 5-9):

  gamma 0.03: ACC 77.99 +- 0.76 (seeds 0-4), 76.94 +- 1.15 (seeds 5-9)
  gamma 0.3:  ACC 76.17 +- 0.91,             76.59 +- 0.99
  lamaml:     ACC 77.54 +- 1.00,             77.24 +- 0.78
"""

from emcl_jax import configs
from emcl_jax.configs import mnist_permutations

MODEL = 'mlp'
METHODS = {**mnist_permutations.METHODS,
           'emcl': {**mnist_permutations.METHODS['emcl'], 'gamma': 0.03}}


def get_config(method: str = 'emcl') -> configs.RunConfig:
  """The run of `method` on mnist_rotations:
  `python experiments/run.py --dataset=mnist_rotations --method=METHOD`."""
  return configs.benchmark_config('mnist_rotations', method, MODEL, METHODS)
