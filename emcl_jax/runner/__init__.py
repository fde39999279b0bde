"""Runs end to end. One entry, `sweep(run_configs, workdir)`: configs x
seeds, grouped into programs, each config in its own folders of the work
directory (flax's `train_and_evaluate(config, workdir)` is the one-config
case).

  config = emcl_jax.configs.get_config('mnist_permutations', 'emcl',
                                       {'data.num_tasks': 3})
  outcomes = runner.sweep([config_a, config_b], 'sweeps')  # in folders
  results = runner.train_and_evaluate(config, 'runs')      # one config
  results = runner.run(config)                             # in memory
  per_setting = runner.run_grid([config_a, config_b])      # one program

The parts: `sweeper` (the entry: programs, skip, resume, divergence),
`folders` (a config's run folders: name, hash, locks, writers, results),
`train` (`run`, `run_grid`: the seeds through the engine), `build` (the
tasks, model and method of one seed), `results` (the results dictionary,
`results.json`'s schema).
"""

from emcl_jax.runner.build import Setup, load_tasks, setup
from emcl_jax.runner.folders import RunExistsError, RunFolders
from emcl_jax.runner.results import SCHEMA_VERSION, peak_memory
from emcl_jax.runner.results import peak_rss_bytes, versions
from emcl_jax.runner.sweeper import Outcome, programs, report_program
from emcl_jax.runner.sweeper import sweep
from emcl_jax.runner.sweeper import train_and_evaluate
from emcl_jax.runner.train import run, run_grid, static_part
from emcl_jax.methods import METHODS

__all__ = ['METHODS', 'Outcome', 'RunExistsError', 'RunFolders',
           'SCHEMA_VERSION', 'Setup', 'load_tasks', 'peak_memory',
           'peak_rss_bytes', 'programs', 'report_program', 'run', 'run_grid', 'setup',
           'static_part', 'sweep', 'train_and_evaluate', 'versions']
