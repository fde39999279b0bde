r"""Speed benchmark: every method against the cost floor, in one process.

  python experiments/bench.py --output=bench.json          # MLP, MNIST perms
  python experiments/bench.py --methods=emcl,lamaml --timed_tasks=2

The floor is fine-tuning over exactly EMCL's inner stream: the same
per-sample gradient steps on the incoming batch plus its replay samples, with
nothing else (`finetune` with EMCL's memory_size, replay_size and glances).
For each (dataset, model, method) the training call of one task (the whole
task's batch stream, one jitted `lax.scan`) is compiled, warmed up once,
then timed on the first `--timed_tasks` tasks with `block_until_ready`;
the median gives microseconds per incoming stream sample. Also measured:
compile seconds, XLA's memory estimate of the compiled call (arguments,
outputs and temporaries) and the process's peak resident memory so far.

Then, on the first dataset and model:
  scaling_tasks   per-task time over the whole stream (cost per sample
                  against the task index) for the floor, EMCL, GEM, A-GEM;
  scaling_width   the floor and EMCL on MLPs of other widths;
  scaling_seeds   the floor and EMCL with S seeds vmapped in one call;
  protocol        the full protocol with EMCL (training plus evaluation of
                  every task after every task), steady state, evaluation
                  serial and overlapped with training: the faster mode's
                  median over `--protocol_repeats` runs is
                  `protocol_seconds`; evaluation's share of the serial one.

`--output=FILE` writes everything as JSON with two top-level figures:
`emcl_over_floor` (EMCL's per-sample time over the floor's, first dataset
and model) and `protocol_seconds`.
"""

import json
import os
import resource
import statistics
import time
from typing import Any, Optional

from absl import app
from absl import flags
from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax import engine
from emcl_jax import experiment
from emcl_jax import models
from emcl_jax.methods import JOINT, METHODS

FLAGS = flags.FLAGS
flags.DEFINE_list('datasets', ['mnist_permutations'], 'Benchmarks whose '
                  'stream shapes are timed.')
flags.DEFINE_list('models', ['mlp'], 'Models: mlp, resnet18_reduced.')
flags.DEFINE_list('methods', ['all'], "Methods to time beside the floor "
                  "('all': every method except joint).")
flags.DEFINE_integer('timed_tasks', 3, 'Tasks timed per method after the '
                     'warm-up task (the median is reported).')
flags.DEFINE_list('widths', ['100', '200', '400'], 'MLP widths for the '
                  'width scaling.')
flags.DEFINE_list('seeds', ['1', '2', '4'], 'Seeds in parallel (vmapped) for '
                  'the seed scaling.')
flags.DEFINE_list('scaling_methods', ['floor', 'emcl', 'gem', 'agem'],
                  'Methods timed on every task for the task scaling.')
flags.DEFINE_integer('protocol_repeats', 3, 'Full-protocol EMCL runs.')
flags.DEFINE_integer('samples_per_task', None, 'Shrink the timed streams '
                     '(e.g. for the ResNet on the CPU); default: full.')
flags.DEFINE_integer('num_tasks', None, 'Shrink the benchmark: tasks.')
flags.DEFINE_bool('scaling', True, 'Run the scaling and protocol sections.')
flags.DEFINE_string('output', None, 'JSON file for the results.')

FLOOR = 'floor'


def floor_overrides(dataset: str) -> dict[str, Any]:
  """Fine-tuning's settings that make its stream EMCL's inner stream."""
  emcl = experiment.method_config(dataset, 'emcl', {})
  return dict(memory_size=emcl.memory_size, replay_size=emcl.replay_size,
              glances=emcl.glances)


def model_fn(name: str, width: Optional[int] = None):
  """num_classes -> flax module, for `experiment.setup` (`width`: the MLP's
  hidden sizes)."""
  if name not in models.MODELS:
    raise app.UsageError(f'unknown model {name!r}; use one of '
                         f'{", ".join(models.MODELS)}')
  if name == 'mlp' and width:
    return lambda n: models.MLP(hidden=(width, width), num_classes=n)
  return lambda n: models.make(name, n)


def build(dataset: str, method: str, model: str, *,
          width: Optional[int] = None) -> experiment.Setup:
  """The run's setup; `method` may be 'floor'."""
  sizes = dict(samples_per_task=FLAGS.samples_per_task,
               num_tasks=FLAGS.num_tasks, model_fn=model_fn(model, width))
  if method == FLOOR:
    return experiment.setup(dataset, 'finetune',
                            overrides=floor_overrides(dataset), **sizes)
  return experiment.setup(dataset, method, **sizes)


def peak_rss_mib() -> float:
  """Peak resident memory of this process so far (Linux: KiB units)."""
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn, *args):
  t0 = time.perf_counter()
  out = jax.block_until_ready(fn(*args))
  return out, time.perf_counter() - t0


def time_method(dataset: str, method: str, model: str, *, timed_tasks: int,
                width: Optional[int] = None, seeds: int = 0,
                all_tasks: bool = False) -> dict[str, Any]:
  """Compiles one task's training call and times it on successive tasks.

  Args:
    seeds: if > 0, vmap the call over this many seeds (one state and key per
      seed, the same data) instead of one plain call.
    all_tasks: time every task of the stream (task scaling) instead of
      `timed_tasks` of them.

  Returns:
    A dict: us_per_sample (median over the timed tasks), task_seconds,
    compile_seconds, memory_bytes (XLA's estimate), peak_rss_mib.
  """
  s = build(dataset, method, model, width=width)
  batch_size = 10
  xs, ys, ts = (jnp.asarray(a) for a in engine.batched(s.tasks, batch_size))
  n = int(ys.shape[1] * ys.shape[2])
  keys = jax.random.split(s.key, ys.shape[0])
  train = engine.make_train_task(s.method)
  if seeds:
    seed_keys = jax.random.split(jax.random.PRNGKey(1), seeds)
    state = jax.vmap(lambda k: s.method.init(s.params, k))(seed_keys)
    fn = jax.vmap(train, in_axes=(0, None, None, None, 0))
    task_key = lambda t: jax.random.split(keys[t], seeds)
  else:
    state = s.method.init(s.params, jax.random.PRNGKey(1))
    fn = train
    task_key = lambda t: keys[t]
  t0 = time.perf_counter()
  compiled = jax.jit(fn, donate_argnums=0).lower(
      state, xs[0], ys[0], ts[0], task_key(0)).compile()
  compile_seconds = time.perf_counter() - t0
  mem = compiled.memory_analysis()
  memory_bytes = None
  if mem is not None:
    memory_bytes = int(mem.argument_size_in_bytes + mem.output_size_in_bytes
                       + mem.temp_size_in_bytes)
  num_tasks = ys.shape[0]
  # Warm-up on a copy (the call donates its state).
  _timed(compiled, jax.tree.map(jnp.copy, state), xs[0], ys[0], ts[0],
         task_key(0))
  seconds = []
  for t in range(num_tasks if all_tasks else timed_tasks):
    t = t % num_tasks
    (state, _), dt = _timed(compiled, state, xs[t], ys[t], ts[t], task_key(t))
    seconds.append(dt)
  return {'us_per_sample': 1e6 * statistics.median(seconds) / n,
          'task_seconds': seconds, 'samples_per_task': n,
          'compile_seconds': compile_seconds, 'memory_bytes': memory_bytes,
          'peak_rss_mib': peak_rss_mib()}


def protocol(dataset: str, model: str, repeats: int) -> dict[str, Any]:
  """The full protocol with EMCL, `repeats` times in each mode: training
  plus evaluation of every task after every task, compilation excluded.

  'serial' evaluates after each task; 'overlapped' evaluates task t on a
  second thread while task t+1 trains (engine `overlap_eval`). A run's
  seconds are the wall time of its loop over tasks (`loop_seconds`).
  """
  out = {}
  for mode in ('serial', 'overlapped'):
    runs = []
    for _ in range(repeats):
      s = build(dataset, 'emcl', model)
      r = engine.train_and_evaluate(s.method, s.apply_fn, s.params, s.tasks,
                                    batch_size=10, key=s.key,
                                    overlap_eval=mode == 'overlapped')
      runs.append({'seconds': r.loop_seconds,
                   'train_seconds': r.train_seconds,
                   'eval_seconds': r.eval_seconds,
                   'compile_seconds': r.compile_seconds})
    seconds = statistics.median(r['seconds'] for r in runs)
    evals = statistics.median(r['eval_seconds'] for r in runs)
    out[mode] = {'runs': runs, 'seconds': seconds, 'eval_seconds': evals,
                 'eval_share': evals / seconds if mode == 'serial' else None}
  out['seconds'] = min(out['serial']['seconds'],
                       out['overlapped']['seconds'])
  return out


def methods_to_time() -> list[str]:
  if FLAGS.methods == ['all']:
    return [m for m in METHODS if m not in JOINT]
  unknown = [m for m in FLAGS.methods if m not in METHODS]
  if unknown:
    raise app.UsageError(f'unknown method {unknown[0]!r}; use one of '
                         f'{", ".join(METHODS)}')
  return FLAGS.methods


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  methods = methods_to_time()
  out: dict[str, Any] = {'device': jax.default_backend(),
                         'cpu_count': os.cpu_count(),
                         'versions': experiment.versions(), 'table': []}

  def log(row):
    print(json.dumps(row), flush=True)

  for dataset in FLAGS.datasets:
    for model in FLAGS.models:
      floor = time_method(dataset, FLOOR, model,
                          timed_tasks=FLAGS.timed_tasks)
      rows = [{'dataset': dataset, 'model': model, 'method': FLOOR,
               **floor, 'over_floor': 1.0}]
      log(rows[0])
      for method in methods:
        res = time_method(dataset, method, model,
                          timed_tasks=FLAGS.timed_tasks)
        rows.append({'dataset': dataset, 'model': model, 'method': method,
                     **res, 'over_floor': (res['us_per_sample']
                                           / floor['us_per_sample'])})
        log(rows[-1])
      out['table'].extend(rows)

  first = out['table'][0]
  emcl = [r for r in out['table'] if r['method'] == 'emcl'
          and r['dataset'] == first['dataset'] and r['model'] == first['model']]
  out['emcl_over_floor'] = emcl[0]['over_floor'] if emcl else None

  if FLAGS.scaling:
    dataset, model = first['dataset'], first['model']
    out['scaling_tasks'] = {}
    for method in FLAGS.scaling_methods:
      res = time_method(dataset, method, model, timed_tasks=0, all_tasks=True)
      per_task = [1e6 * s / res['samples_per_task']
                  for s in res['task_seconds']]
      slope = float(np.polyfit(np.arange(len(per_task)), per_task, 1)[0])
      out['scaling_tasks'][method] = {'us_per_sample': per_task,
                                      'slope_us_per_task': slope}
      log({'scaling_tasks': method, 'first': per_task[0],
           'last': per_task[-1], 'slope': slope})
    out['scaling_width'] = {}
    for width in map(int, FLAGS.widths):
      row = {m: time_method(dataset, m, model, width=width,
                            timed_tasks=FLAGS.timed_tasks)['us_per_sample']
             for m in (FLOOR, 'emcl')}
      row['emcl_over_floor'] = row['emcl'] / row[FLOOR]
      out['scaling_width'][width] = row
      log({'width': width, **row})
    out['scaling_seeds'] = {}
    for seeds in map(int, FLAGS.seeds):
      row = {m: time_method(dataset, m, model, seeds=seeds,
                            timed_tasks=FLAGS.timed_tasks)['us_per_sample']
             for m in (FLOOR, 'emcl')}
      out['scaling_seeds'][seeds] = row
      log({'seeds': seeds, **row})
    out['protocol'] = protocol(dataset, model, FLAGS.protocol_repeats)
    out['protocol_seconds'] = out['protocol']['seconds']
    log({'protocol_seconds': out['protocol_seconds'],
         'serial': out['protocol']['serial']['seconds'],
         'overlapped': out['protocol']['overlapped']['seconds'],
         'eval_share_serial': out['protocol']['serial']['eval_share']})
  out['peak_rss_mib'] = peak_rss_mib()
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      json.dump(out, f, indent=1)


if __name__ == '__main__':
  app.run(main)
