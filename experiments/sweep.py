"""`python experiments/sweep.py` runs `emcl-sweep` (emcl_jax/launch/sweep.py)."""

from emcl_jax.launch import sweep

if __name__ == '__main__':
  sweep.entry()
