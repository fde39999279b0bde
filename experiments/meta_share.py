r"""How much EMCL's meta step does, task by task, on a benchmark's real data:
the share `meta_grad.meta_step_share` of each update (0: the Eq 8 step
copies the inner loop's end point, theta0 <- theta_k, and the meta-learning
part does nothing; 1: theta0 stays).

  python experiments/meta_share.py --dataset=split_mnist \
      --config.model.name=pc_cnn                 # the CNNs' EMCL values
  python experiments/meta_share.py --dataset=split_mnist \
      --config.model.name=pc_cnn --config.method.r=0.2   # a copy

Trains one seed of the run `experiments/run.py` would train (same data,
model, keys and updates), as one `lax.scan` of `emcl_jax.update` per task
that keeps every update's metrics, and prints per task the mean, min and
max share and the mean loss; `--output` writes them as JSON.
"""

import functools

from absl import flags
from absl import logging
import jax
import numpy as np

from emcl_jax import files
from emcl_jax.base import Batch
from emcl_jax.launch import cli
from emcl_jax.methods import RECORDS
from emcl_jax.methods import emcl
from emcl_jax.runner import build
from emcl_jax.training import engine

FLAGS = flags.FLAGS
SCRIPT = cli.register('meta_share', own=('output',),
                      shared=('dataset', 'method', 'seed', 'data_dir',
                              'config', 'print_config'))


def task_metrics(method, state, x, y, t, key):
  """One task's stream as a `lax.scan` of `method.update` (the engine's
  keys): (state, every update's metrics)."""
  keys = jax.random.split(key, y.shape[0])

  def body(state, inputs):
    xb, yb, tb, k = inputs
    return method.update(state, Batch(xb, yb, tb), k)

  return jax.lax.scan(body, state, (x, y, t, keys))


def main(argv):
  """Trains one seed task by task and prints each task's shares."""
  del argv  # the parser refused any argument left over
  logging.set_verbosity(logging.ERROR)
  with cli.failing():
    config = cli.run_config(FLAGS.dataset, FLAGS.method, {'seeds': 1})
    if RECORDS[config.method.name].config is not emcl.EMCLConfig:
      cli.fail(f'--method={config.method.name} has no Eq 8 meta step; use '
               'an EMCL method (emcl, emcl_gd, emcl_lr_modulation, emcl_si, '
               'emcl_paper)')
    if FLAGS.print_config:
      cli.print_config(config)
      return
    run = build.setup(config, config.seed)
  x, y, t = engine.batched(run.tasks, config.protocol.batch_size)
  key_init, key_run = jax.random.split(run.key)
  task_keys = jax.random.split(key_run, run.tasks.num_tasks)
  state = run.method.init(run.params, key_init)
  step = jax.jit(functools.partial(task_metrics, run.method))
  p = config.method.params
  factor = (f' alpha0*r*lam={p.alpha0 * p.r * p.lam:.3g}'
            if p.meta_lr == 'inverse' else '')  # the step's one factor
  print(f'{config.dataset} {config.model.name} {config.method.name}: '
        f'meta_lr={p.meta_lr}{factor}')
  rows = []
  for task in range(run.tasks.num_tasks):
    state, metrics = step(state, x[task], y[task], t[task], task_keys[task])
    share = np.asarray(metrics['meta_share'])
    rows.append({'task': task, 'mean': float(share.mean()),
                 'min': float(share.min()), 'max': float(share.max()),
                 'loss': float(np.mean(metrics['loss']))})
    print(f'task {task}: share mean {rows[-1]["mean"]:.3f} min '
          f'{rows[-1]["min"]:.3f} max {rows[-1]["max"]:.3f} loss '
          f'{rows[-1]["loss"]:.3f}', flush=True)
  if FLAGS.output:
    try:
      files.write_json(FLAGS.output, {
          'dataset': config.dataset, 'model': config.model.name,
          'method': config.method.name, 'seed': config.seed,
          'params': p._asdict(), 'tasks': rows})
    except OSError as e:
      cli.fail(f'cannot write {FLAGS.output}: {e.strerror or e}; choose a '
               'writable --output')


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
