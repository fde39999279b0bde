"""`python experiments/front.py` runs emcl_jax/launch/front.py."""

from emcl_jax.launch import front

if __name__ == '__main__':
  front.entry()
