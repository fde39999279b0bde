"""Split miniImageNet (20 tasks x 5 classes, 2,500 images each, 84 x 84),
reduced ResNet-18, multi-head. Table II's miniImageNet column equals its
CIFAR-100 column (EWC, GEM, A-GEM lr 0.03, memory 200; La-MAML alpha_0 0.1,
eta 0.3; EMCL alpha_0 0.1, beta 0.075, lambda 50, gamma 0.1), and the
official La-MAML script has no miniImageNet runs: the CIFAR-100 config.
Not yet tuned here (no miniImageNet offline)."""

from emcl_jax import configs
from emcl_jax.configs import cifar100

MODEL = 'resnet18_reduced'
METHODS = cifar100.METHODS


def get_config(method: str = 'emcl') -> configs.RunConfig:
  """The run of `method` on miniimagenet:
  `python experiments/run.py --dataset=miniimagenet --method=METHOD`."""
  return configs.benchmark_config('miniimagenet', method, MODEL, METHODS)
