"""`python experiments/bench.py` runs `emcl-bench` (emcl_jax/launch/bench.py)."""

from emcl_jax.launch import bench

if __name__ == '__main__':
  bench.entry()
