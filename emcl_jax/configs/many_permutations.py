"""Many Permutations (100 tasks x 200): Table II's column (EMCL, La-MAML,
memory 500), the official La-MAML script for C-MAML and Sync, and small
learning-rate grids (seed 0) for the baselines the table is silent on."""


def get_config():
  return {
      'model': 'mlp',
      'methods': {
          'emcl': dict(alpha0=0.15, beta=0.03, lam=10.0, gamma=0.1,
                       memory_size=500),
          'finetune': dict(lr=0.01),
          'joint': dict(lr=0.01),
          'lamaml': dict(alpha_init=0.1, opt_lr=0.1, glances=10,
                         memory_size=500),
          'cmaml': dict(alpha_init=0.03, opt_wt=0.15, glances=5,
                        memory_size=500),
          'sync': dict(alpha_init=0.03, opt_lr=0.1, opt_wt=0.03, glances=10,
                       memory_size=500),
          'gem': dict(lr=0.1, memory_per_task=5, max_tasks=100),
          'agem': dict(lr=0.03, memory_size=500, replay_size=500),
          'ewc': dict(lr=0.1, lam=0.3),
          'ewc_online': dict(lr=0.1, lam=3.0, ewc_gamma=0.9),
          'si': dict(lr=0.03, c=1.0, xi=0.1),
          'mer': dict(memory_size=500, replay_size=5),
          'er': dict(memory_size=500, replay_size=25),
      },
  }
