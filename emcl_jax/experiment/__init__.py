"""A run end to end, as flax's examples lay it out: one call,
`train_and_evaluate(config, workdir)`, trains the run config's seeds in their
own folders of the work directory and writes their results.

  config = emcl_jax.configs.get_config('mnist_permutations', 'emcl',
                                       {'data.num_tasks': 3})
  results = experiment.train_and_evaluate(config, 'runs')   # in folders
  results = experiment.run(config)                           # in memory
  per_setting = experiment.run_grid([config_a, config_b])    # one program

The parts: `build` (the tasks, model and method of one seed), `train`
(`run`: the seeds through the engine), `results` (the results dictionary,
`results.json`'s schema), `workdir_run` (the folders: resume, refuse,
writers).
"""

from emcl_jax.experiment.build import Setup, load_tasks, setup
from emcl_jax.experiment.results import SCHEMA_VERSION, peak_memory
from emcl_jax.experiment.results import peak_rss_bytes, versions
from emcl_jax.experiment.train import run, run_grid
from emcl_jax.experiment.workdir_run import RunExistsError, train_and_evaluate
from emcl_jax.methods import METHODS

__all__ = ['METHODS', 'RunExistsError', 'SCHEMA_VERSION', 'Setup',
           'load_tasks', 'peak_memory', 'peak_rss_bytes', 'run', 'run_grid',
           'setup',
           'train_and_evaluate', 'versions']
