"""Timing of compiled training calls, free of flags: the measurements that
experiments/bench.py reports (paper Fig. 2's training time, per stream
sample), and the cost floor that bench.py and experiments/cost.py share.

A `Timer` holds one method's compiled training call (one task's whole batch
stream, one jitted `lax.scan`) and times it task by task; `head_to_head`
alternates two timers; `protocol` times the full train-and-evaluate loop.
Every clock is injectable, so the arithmetic (medians, ratios, the faster
mode) is tested against hand-computed values.

A helper of those scripts, not a script: they import it as `timing`, found
beside them (a script's folder is the first entry of sys.path).
"""

import statistics
import time
from typing import Any, Callable, Optional

import jax
import jax.numpy as jnp

from emcl_jax import configs
from emcl_jax import runner
from emcl_jax.training import engine

Clock = Callable[[], float]


def floor_overrides(dataset: str) -> dict[str, Any]:
  """Fine-tuning's settings that make its stream EMCL's inner stream (the
  cost floor): EMCL's memory size, replay samples and glances."""
  emcl = configs.get_config(dataset, 'emcl').method
  return {'method.memory_size': emcl.memory_size,
          'method.replay_size': emcl.replay_size,
          'method.glances': emcl.glances}


def us_per_sample(seconds: list[float], samples_per_task: int) -> float:
  """Microseconds per incoming stream sample of the median task."""
  return 1e6 * statistics.median(seconds) / samples_per_task


class Timer:
  """One method's compiled training call, ready to be timed task by task.

  Args:
    setup: the run's `runner.Setup` (its method, data and key).
    seeds: if > 0, vmap the call over this many seeds (one state and key per
      seed, the same data) instead of one plain call.
    clock: seconds, read before and after each timed call.

  Attributes:
    num_tasks: tasks in the stream (timing wraps around them).
    samples_per_task: incoming stream samples per task.
    compile_seconds: lowering plus compilation of the call.
    memory_bytes: XLA's estimate (arguments, outputs, temporaries).
  """

  def __init__(self, setup: runner.Setup, *, seeds: int = 0,
               clock: Clock = time.perf_counter):
    s = setup
    xs, ys, ts = (jnp.asarray(a) for a in engine.batched(s.tasks, 10))
    self._data, self._clock = (xs, ys, ts), clock
    self.num_tasks = int(ys.shape[0])
    self.samples_per_task = int(ys.shape[1] * ys.shape[2])
    keys = jax.random.split(s.key, self.num_tasks)
    train = engine.make_train_task(s.method)
    if seeds:
      seed_keys = jax.random.split(jax.random.PRNGKey(1), seeds)
      state = jax.vmap(lambda k: s.method.init(s.params, k))(seed_keys)
      fn = jax.vmap(train, in_axes=(0, None, None, None, 0))
      self._key = lambda t: jax.random.split(keys[t], seeds)
    else:
      state = s.method.init(s.params, jax.random.PRNGKey(1))
      fn = train
      self._key = lambda t: keys[t]
    t0 = time.perf_counter()
    self._compiled = jax.jit(fn, donate_argnums=0).lower(
        state, xs[0], ys[0], ts[0], self._key(0)).compile()
    self.compile_seconds = time.perf_counter() - t0
    mem = self._compiled.memory_analysis()
    self.memory_bytes = None if mem is None else int(
        mem.argument_size_in_bytes + mem.output_size_in_bytes
        + mem.temp_size_in_bytes)
    # Warm-up on a copy (the call donates its state), not timed.
    xs_, ys_, ts_ = self._data
    jax.block_until_ready(self._compiled(jax.tree.map(jnp.copy, state),
                                         xs_[0], ys_[0], ts_[0],
                                         self._key(0)))
    self._state, self._next = state, 0

  def time(self, tasks: int) -> list[float]:
    """Seconds of each of the next `tasks` tasks (wrapping around)."""
    xs, ys, ts = self._data
    seconds = []
    for _ in range(tasks):
      t = self._next % self.num_tasks
      t0 = self._clock()
      self._state, _ = jax.block_until_ready(self._compiled(
          self._state, xs[t], ys[t], ts[t], self._key(t)))
      seconds.append(self._clock() - t0)
      self._next += 1
    return seconds

  def us_per_sample(self, seconds: list[float]) -> float:
    """Microseconds per incoming sample of the median task."""
    return us_per_sample(seconds, self.samples_per_task)


def time_method(timer: Timer, timed_tasks: int,
                all_tasks: bool = False) -> dict[str, Any]:
  """Times a compiled call on successive tasks.

  Args:
    timer: the method's `Timer`.
    timed_tasks: tasks timed after the warm-up.
    all_tasks: time every task of the stream (task scaling) instead.

  Returns:
    A dict: us_per_sample (median over the timed tasks), task_seconds,
    samples_per_task, compile_seconds, memory_bytes (XLA's estimate),
    peak_rss_mib.
  """
  seconds = timer.time(timer.num_tasks if all_tasks else timed_tasks)
  return {'us_per_sample': timer.us_per_sample(seconds),
          'task_seconds': seconds,
          'samples_per_task': timer.samples_per_task,
          'compile_seconds': timer.compile_seconds,
          'memory_bytes': timer.memory_bytes,
          'peak_rss_mib': runner.peak_rss_bytes() / 2**20}


def head_to_head(floor: Timer, emcl: Timer, rounds: int,
                 timed_tasks: int) -> dict[str, Any]:
  """EMCL against the floor in alternating rounds (floor, EMCL, floor, ...),
  `timed_tasks` tasks each: the ratio of their medians per round, and its
  median over the rounds as `emcl_over_floor`, robust to a machine whose
  speed drifts while the benchmark runs."""
  ratios, floor_us, emcl_us = [], [], []
  for _ in range(rounds):
    floor_us.append(floor.us_per_sample(floor.time(timed_tasks)))
    emcl_us.append(emcl.us_per_sample(emcl.time(timed_tasks)))
    ratios.append(emcl_us[-1] / floor_us[-1])
  return {'rounds': rounds, 'timed_tasks': timed_tasks,
          'floor_us_per_sample': floor_us, 'emcl_us_per_sample': emcl_us,
          'ratios': ratios, 'emcl_over_floor': statistics.median(ratios)}


def protocol(setup_fn: Callable[[], runner.Setup], repeats: int,
             run_fn: Optional[Callable[..., engine.RunResult]] = None
             ) -> dict[str, Any]:
  """The full protocol, `repeats` times in each mode: training plus
  evaluation of every task after every task, compilation excluded.

  'serial' evaluates after each task; 'overlapped' evaluates task t on a
  second thread while task t+1 trains (engine `overlap_eval`). A run's
  seconds are the wall time of its loop over tasks (`loop_seconds`); each
  mode reports the median over its runs, and `seconds` is the faster mode's.

  Args:
    setup_fn: builds a fresh setup for each run.
    repeats: runs per mode.
    run_fn: `run_fn(setup, overlap_eval)` -> a `RunResult` (default: the
      engine's protocol with batches of 10).
  """
  if run_fn is None:
    run_fn = lambda s, overlap_eval: engine.train_and_evaluate(  # noqa: E731
        s.method, s.apply_fn, s.params, s.tasks, batch_size=10, key=s.key,
        overlap_eval=overlap_eval)
  out = {}
  for mode in ('serial', 'overlapped'):
    runs = []
    for _ in range(repeats):
      r = run_fn(setup_fn(), overlap_eval=mode == 'overlapped')
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
