"""`python experiments/summarize.py` runs `emcl-summarize` (emcl_jax/launch/summarize.py)."""

from emcl_jax.launch import summarize

if __name__ == '__main__':
  summarize.entry()
