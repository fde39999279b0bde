"""Split CIFAR-100 (20 tasks x 5 classes, 2,500 images each), reduced
ResNet-18, multi-head: Table II's column (EWC, GEM, A-GEM lr 0.03 and memory
200; La-MAML alpha_0 0.1, eta 0.3; EMCL alpha_0 0.1, beta 0.075, lambda 50,
gamma 0.1; replay memory 200). C-MAML and Sync: the official La-MAML
script's CIFAR values. Not yet tuned here (no CIFAR-100 offline)."""


from emcl_jax import configs

MODEL = 'resnet18_reduced'

METHODS = {
    'emcl': dict(alpha0=0.1, beta=0.075, lam=50.0, gamma=0.1,
                 memory_size=200),
    # The paper's EMCL as written (`methods.RECORDS['emcl_paper']`):
    # Table II's values only.
    'emcl_paper': dict(alpha0=0.1, beta=0.075, lam=50.0, gamma=0.1),
    'finetune': dict(lr=0.03),
    'joint': dict(lr=0.03),
    # Table II: alpha_0 0.1, eta 0.3; the script's glances 10, clip 1.
    'lamaml': dict(alpha_init=0.1, opt_lr=0.3, opt_wt=0.1, glances=10,
                   grad_clip_norm=1.0, memory_size=200),
    'cmaml': dict(alpha_init=0.075, opt_wt=0.075, glances=2,
                  memory_size=200),
    'sync': dict(alpha_init=0.1, opt_lr=0.35, opt_wt=0.1, glances=5,
                 memory_size=200),
    'gem': dict(lr=0.03, memory_per_task=10, max_tasks=20),
    'agem': dict(lr=0.03, memory_size=200, replay_size=200),
    # Table II's regularization 100 is the GEM code's memory_strength,
    # which multiplies the penalty without its 1/2: lam = 2 x 100 here
    # (methods/ewc.py).
    'ewc': dict(lr=0.03, lam=200.0),
    'ewc_online': dict(lr=0.03, lam=200.0, ewc_gamma=0.9),
    'si': dict(lr=0.03),
    'mer': dict(memory_size=200),
    'er': dict(lr=0.03, memory_size=200),
}


def get_config(method: str = 'emcl') -> configs.RunConfig:
  """The run of `method` on cifar100:
  `python experiments/run.py --dataset=cifar100 --method=METHOD`."""
  return configs.benchmark_config('cifar100', method, MODEL, METHODS)
