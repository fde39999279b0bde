"""`python experiments/cost.py` runs emcl_jax/launch/cost.py."""

from emcl_jax.launch import cost

if __name__ == '__main__':
  cost.entry()
