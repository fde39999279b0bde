"""MNIST Rotations (20 tasks x 1000, single head, the MLP): not in the EMCL
paper; GEM's, MER's and La-MAML's third MNIST benchmark. Every method takes
its MNIST Permutations values: La-MAML's script (`run_experiments.sh`) runs
`lamaml` on Rotations with the same flags as on Permutations (200 memories,
5 glances, opt_lr 0.3, alpha_init 0.15, learned LRs)."""

from emcl_jax import configs
from emcl_jax.configs import mnist_permutations

MODEL = 'mlp'
METHODS = mnist_permutations.METHODS


def get_config(method: str = 'emcl') -> configs.RunConfig:
  """The run of `method` on mnist_rotations:
  `python experiments/run.py --dataset=mnist_rotations --method=METHOD`."""
  return configs.benchmark_config('mnist_rotations', method, MODEL, METHODS)
