"""`python experiments/grid_cost.py` runs emcl_jax/launch/grid_cost.py."""

from emcl_jax.launch import grid_cost

if __name__ == '__main__':
  grid_cost.entry()
