"""Split MNIST (5 tasks x 2 classes, multi-head), the vision path's check on
real images offline. Not in the paper: MNIST Permutations' values, with
`--model=resnet18_reduced` as the alternative to the MLP."""

from emcl_jax.configs import mnist_permutations


def get_config():
  config = mnist_permutations.get_config()
  config['methods']['gem'] = dict(config['methods']['gem'], max_tasks=5)
  return config
