"""MNIST Rotations (20 tasks x 1000, single head, the MLP): not in the EMCL
paper; GEM's, MER's and La-MAML's third MNIST benchmark. Every method takes
its MNIST Permutations values: La-MAML's script (`run_experiments.sh`) runs
`lamaml` on Rotations with the same flags as on Permutations (200 memories,
5 glances, opt_lr 0.3, alpha_init 0.15, learned LRs)."""

from emcl_jax.configs import mnist_permutations


def get_config():
  return mnist_permutations.get_config()
