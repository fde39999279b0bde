"""`python experiments/reproduce.py` runs `emcl-reproduce` (emcl_jax/launch/reproduce.py)."""

from emcl_jax.launch import reproduce

if __name__ == '__main__':
  reproduce.entry()
