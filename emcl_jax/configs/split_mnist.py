"""Split MNIST (5 tasks x 2 classes, multi-head), the vision path's check on
real images offline. Not in the paper: MNIST Permutations' values, with
`--config.model.name=resnet18_reduced` as the alternative to the MLP."""

from emcl_jax import configs
from emcl_jax.configs import mnist_permutations

MODEL = 'mlp'
METHODS = {**mnist_permutations.METHODS,
           'gem': {**mnist_permutations.METHODS['gem'], 'max_tasks': 5},
           # ER's MER-script values: its selection (lr 0.3, replay 25) ran on
           # Permutations and Rotations, not here.
           'er': dict(memory_size=200)}


def get_config(method: str = 'emcl') -> configs.RunConfig:
  """The run of `method` on split_mnist:
  `python experiments/run.py --dataset=split_mnist --method=METHOD`."""
  return configs.benchmark_config('split_mnist', method, MODEL, METHODS)
