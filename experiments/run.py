"""`python experiments/run.py` runs `emcl-run` (emcl_jax/launch/run.py)."""

from emcl_jax.launch import run

if __name__ == '__main__':
  run.entry()
