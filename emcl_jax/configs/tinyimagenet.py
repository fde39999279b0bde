"""Split TinyImageNet (40 tasks x 5 classes, 64x64x3, multi-head), as the
official La-MAML script runs it (montrealrobotics/La-MAML,
`run_experiments.sh`, its single-pass TinyImageNet block): `--increment 5`,
`--config.data.class_order=random`, the `pc_cnn` network (`models.PCCNN`), 400 replay
memories, batch size 10, one epoch. Each task trains on 2,250 of its 2,500
images (La-MAML holds out 10% of every class for validation; here a random
10% of the task's stream is left out) and is tested on the 250 validation
images of its classes.

  python experiments/run.py --dataset=tinyimagenet --method=lamaml

The methods take the script's single-pass values: La-MAML glances 2,
opt_lr 0.4, alpha_init 0.1, opt_wt 0.1, grad clip 1.0; C-MAML opt_lr 0.35,
alpha_init 0.03, opt_wt 0.03; Sync opt_lr 0.25, alpha_init 0.075, opt_wt
0.075; ER lr 0.01, one replay sample, glances 2; MER lr 0.1, beta 0.1,
gamma 1.0, 25 replay samples, clip 10; GEM lr 0.03, 10 memories per task,
strength 0.5, clip 5, glances 2; A-GEM lr 0.01, 10 memories per task (400),
glances 2. La-MAML, C-MAML and Sync run the script's vision algorithm
(`model/lamaml_cifar.py`, `--cifar_batches 5 --second_order`; see
`cifar100.VISION` and `methods/lamaml.py`): 5 inner steps on chunks of 2,
raw alpha in the inner steps, inner gradients clamped at grad_clip_norm
(1.0 La-MAML, the default 2.0 C-MAML and Sync), second-order
meta-gradients. EMCL is not in the script or the paper here: Table II's
CIFAR-100 values (alpha0 0.1, beta 0.075, lambda 50, gamma 0.1) with the
script's memory and glances; not tuned.
"""

from emcl_jax import configs
from emcl_jax.configs import cifar100

MODEL = 'pc_cnn'
# r = 0.1: a meta step that acts (cifar100.py's docstring).
EMCL = dict(alpha0=0.1, beta=0.075, lam=50.0, gamma=0.1, r=0.1,
            memory_size=400, glances=2)
METHODS = {
    'emcl': EMCL,
    # The GD ablation at a stable lambda (cifar100.GD_LAM).
    'emcl_gd': dict(EMCL, lam=cifar100.GD_LAM),
    'finetune': dict(lr=0.01),
    'joint': dict(lr=0.01),
    # The script's single-pass TinyImageNet block (run_experiments.sh):
    # La-MAML l.293-296, C-MAML l.287-290 (opt_lr unused: learn_lr off),
    # Sync l.281-284; --memories 400 --replay_batch_size 10 on each; clip
    # 1.0 for La-MAML (l.296), the script's default 2.0 for the others.
    'lamaml': dict(alpha_init=0.1, opt_lr=0.4, opt_wt=0.1, glances=2,
                   grad_clip_norm=1.0, memory_size=400, **cifar100.VISION),
    'cmaml': dict(alpha_init=0.03, opt_lr=0.35, opt_wt=0.03, glances=2,
                  grad_clip_norm=2.0, memory_size=400, **cifar100.VISION),
    'sync': dict(alpha_init=0.075, opt_lr=0.25, opt_wt=0.075, glances=2,
                 grad_clip_norm=2.0, memory_size=400, **cifar100.VISION),
    'er': dict(lr=0.01, memory_size=400, replay_size=1, glances=2),
    'mer': dict(lr=0.1, beta=0.1, gamma=1.0, batches_per_example=10,
                memory_size=400, replay_size=25, grad_clip_norm=10.0),
    'gem': dict(lr=0.03, memory_per_task=10, max_tasks=40,
                memory_strength=0.5, grad_clip_norm=5.0, glances=2),
    'agem': dict(lr=0.01, memory_size=400, replay_size=400, glances=2),
    'ewc': dict(lr=0.01, lam=100.0),
    'ewc_online': dict(lr=0.01, lam=100.0, ewc_gamma=0.9),
    'si': dict(lr=0.01),
}


def get_config(method: str = 'emcl') -> configs.RunConfig:
  """The run of `method` on tinyimagenet:
  `python experiments/run.py --dataset=tinyimagenet --method=METHOD`."""
  return configs.benchmark_config('tinyimagenet', method, MODEL, METHODS,
                                  class_order='random')
