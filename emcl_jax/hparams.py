"""Per-benchmark default hyper-parameters (Table II of the paper).

Table II gives EMCL's alpha0, beta, lambda and gamma per benchmark, and the
replay memory the memory-based methods use (Section V: 200 / 500 / 200 / 200).
Everything else is EMCLConfig's default, chosen by measurement
(docs/algorithm.md).

Where Table II is silent (La-MAML's variants, the MNIST baselines) the values
are those of the method's own paper or official code: La-MAML, C-MAML and
Sync from montrealrobotics/La-MAML's run_experiments.sh. For Many
Permutations Table II's La-MAML column agrees with the script (alpha_0 0.1,
eta 0.1); for MNIST Permutations the table lists alpha_0 0.3, eta 0.15 where
the script runs alpha_init 0.15, opt_lr 0.3 -- the two numbers swapped. We
follow the script, whose run is the reference we measure against.

One deviation, measured: Table II's beta = 0.15 for MNIST Permutations is the
step of *one-sample* inner updates, and one-sample SGD at 0.15 on this MLP
diverges within a task (EMCL ACC 21.8 / 10.8 at r = 0.33 / 0.67, seed 0;
docs/algorithm.md). We use beta = 0.03, Table II's own value for Many
Permutations; pass --beta=0.15 to run the table's value.
"""

TABLE_II = {
    'mnist_permutations': {
        'emcl': dict(alpha0=0.3, beta=0.03, lam=10.0, gamma=0.3,
                     memory_size=200),
        'finetune': dict(lr=0.01),
        'joint': dict(lr=0.01),
        'lamaml': dict(alpha_init=0.15, opt_lr=0.3, glances=5,
                       memory_size=200),
        'cmaml': dict(alpha_init=0.03, opt_wt=0.1, glances=5,
                      memory_size=200),
        'sync': dict(alpha_init=0.15, opt_lr=0.1, opt_wt=0.1, glances=5,
                     memory_size=200),
        # Table II is silent on MNIST: learning-rate grids, seed 0 (notes).
        'gem': dict(lr=0.1, memory_per_task=10, max_tasks=20),
        'agem': dict(lr=0.03, memory_size=200, replay_size=200),
        'ewc': dict(lr=0.1, lam=1.0),
        'ewc_online': dict(lr=0.1, lam=10.0, ewc_gamma=0.9),
        'si': dict(lr=0.1, c=0.1, xi=0.1),
        'mer': dict(memory_size=200),
        'er': dict(memory_size=200),
    },
    'many_permutations': {
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


def defaults(dataset: str, method: str) -> dict:
  """Table II's values for (dataset, method); {} where the table is silent.

  EMCL's variants (emcl_si) share EMCL's row.
  """
  table = TABLE_II.get(dataset, {})
  if method not in table and method.startswith('emcl'):
    method = 'emcl'
  return dict(table.get(method, {}))
