"""EWC, online EWC and SI: the empirical Fisher and the SI path integral
against hand-computed numbers, the collapsed EWC penalty against the sum of
per-task penalties, consolidation exactly once per task boundary in a
stream, jit/no-jit agreement and one trace."""

import functools
import math

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fixtures
from emcl_jax.training import engine
from emcl_jax.methods import fisher
from emcl_jax.base import Batch
from emcl_jax.losses import cross_entropy, weighted_mean
from emcl_jax.methods import ewc
from emcl_jax.methods import si


def linear_apply(params, x):
  return x @ params['w'] + params['b']


LINEAR_LOSS = cross_entropy(linear_apply)


MLP_LOSS = cross_entropy(fixtures.mlp_apply)
MLP_FISHER = jax.jit(functools.partial(fisher.empirical_fisher, MLP_LOSS))


def task_batches(task, num_batches, n=4):
  """Batches of one task; x[:, 0] = task, so a stored sample tells which
  task it came from."""
  rng = np.random.default_rng(10 + task)
  x = rng.normal(size=(num_batches * n, 5)).astype(np.float32)
  x[:, 0] = task
  y = rng.integers(0, 3, num_batches * n)
  t = np.full(num_batches * n, task, np.int32)
  return [Batch(jnp.asarray(x[i * n:(i + 1) * n]),
                jnp.asarray(y[i * n:(i + 1) * n]),
                jnp.asarray(t[i * n:(i + 1) * n])) for i in range(num_batches)]


def random_tree(rng, positive=False):
  draw = ((lambda s: rng.uniform(0.1, 2.0, s)) if positive
          else (lambda s: rng.normal(size=s)))
  return {'w': jnp.asarray(draw((3, 2)), jnp.float32),
          'b': jnp.asarray(draw((2,)), jnp.float32)}


class FisherTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_empirical_fisher_of_linear_softmax_by_hand(self):
    # logits = x W + b with W = 0, b = [ln 3, 0]: p = [3/4, 1/4] for every
    # x. The cross-entropy's gradient is dl/dW = x (p - e_y)^T, dl/db =
    # p - e_y. Sample 1: x = [1, 2], y = 0, p - e_y = [-1/4, 1/4]:
    #   gW1 = [[-1/4, 1/4], [-1/2, 1/2]], gb1 = [-1/4, 1/4].
    # Sample 2: x = [3, -1], y = 1, p - e_y = [3/4, -3/4]:
    #   gW2 = [[9/4, -9/4], [-3/4, 3/4]], gb2 = [3/4, -3/4].
    # F = (g1^2 + g2^2) / 2:
    #   W: [[(1/16 + 81/16)/2] * 2, [(1/4 + 9/16)/2] * 2]
    #      = [[41/16, 41/16], [13/32, 13/32]],
    #   b: (1/16 + 9/16)/2 = 5/16 for both.
    params = {'w': jnp.zeros((2, 2)),
              'b': jnp.asarray([math.log(3.0), 0.0], jnp.float32)}
    # A third, padding row (weight 0) must not count.
    batch = Batch(jnp.asarray([[1.0, 2.0], [3.0, -1.0], [50.0, 50.0]]),
                  jnp.asarray([0, 1, 0]), jnp.zeros(3, jnp.int32))
    # Chunks of 1, 2 (one zero-weight row of padding added) and 3 samples.
    for chunk_size in (1, 2, 3):
      fn = self.variant(functools.partial(
          fisher.empirical_fisher, LINEAR_LOSS, chunk_size=chunk_size))
      f = fn(params, batch, jnp.asarray([1.0, 1.0, 0.0]))
      chex.assert_trees_all_close(
          f, {'w': jnp.asarray([[41 / 16, 41 / 16], [13 / 32, 13 / 32]]),
              'b': jnp.asarray([5 / 16, 5 / 16])}, rtol=1e-6)
    # One sample: its squared gradient; it is not the squared mean gradient
    # (W: [[1, 1], [-5/8, 5/8]]^2), what the GEM repository computes.
    f1 = fn(params, batch, jnp.asarray([1.0, 0.0, 0.0]))
    chex.assert_trees_all_close(
        f1, {'w': jnp.asarray([[1 / 16, 1 / 16], [1 / 4, 1 / 4]]),
             'b': jnp.asarray([1 / 16, 1 / 16])}, rtol=1e-6)
    self.assertFalse(np.allclose(f['w'], [[1.0, 1.0], [25 / 64, 25 / 64]]))
    with self.assertRaisesRegex(ValueError, 'chunk_size'):
      fisher.empirical_fisher(LINEAR_LOSS, params, batch, jnp.ones(3),
                              chunk_size=0)

  def test_per_sample_grads_match_single_sample_grads(self):
    params, batch = fixtures.make_params(), task_batches(0, 1)[0]
    grads = jax.jit(functools.partial(fisher.per_sample_grads, MLP_LOSS))(
        params, batch)
    grad_fn = jax.jit(jax.grad(MLP_LOSS))
    for i in range(4):
      one = Batch(batch.x[i:i + 1], batch.y[i:i + 1], batch.t[i:i + 1])
      ref = grad_fn(params, one, jnp.ones(1))
      chex.assert_trees_all_close(jax.tree.map(lambda g: g[i], grads), ref,
                                  atol=1e-6)


class EWCPenaltyTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_collapsed_penalty_equals_sum_of_task_penalties(self):
    rng = np.random.default_rng(0)
    fishers = [random_tree(rng, positive=True) for _ in range(3)]
    stars = [random_tree(rng) for _ in range(3)]
    theta = random_tree(rng)
    lam = 3.0

    def per_task(theta):  # Kirkpatrick et al. Eq 3, one term per task
      return sum(jnp.sum(f[k] * (theta[k] - s[k]) ** 2)
                 for f, s in zip(fishers, stars) for k in f)

    @self.variant
    def collapsed(theta):
      penalty = ewc.penalty_init(theta)
      for f, s in zip(fishers, stars):
        penalty = ewc.consolidate(penalty, f, s)
      return (ewc.penalty_value(penalty, theta),
              ewc.penalty_grad(penalty, theta, lam), penalty)

    value, grad, penalty = collapsed(theta)
    np.testing.assert_allclose(value, per_task(theta), rtol=1e-5)
    auto = jax.grad(lambda p: 0.5 * lam * per_task(p))(theta)
    chex.assert_trees_all_close(grad, auto, rtol=1e-5, atol=1e-5)
    # The stored pieces: A = sum F_k, B = sum F_k theta*_k.
    chex.assert_trees_all_close(
        penalty.fisher, jax.tree.map(lambda *f: sum(f), *fishers), rtol=1e-6)
    chex.assert_trees_all_close(
        penalty.fisher_anchor,
        jax.tree.map(lambda f0, f1, f2, s0, s1, s2: f0 * s0 + f1 * s1
                     + f2 * s2, *fishers, *stars), rtol=1e-5)
    # At theta = theta*_0 only the other tasks' terms remain.
    np.testing.assert_allclose(
        ewc.penalty_value(penalty, stars[0]), per_task(stars[0]), rtol=1e-4)

  @chex.variants(with_jit=True, without_jit=True)
  def test_online_penalty_decays_old_fisher(self):
    rng = np.random.default_rng(1)
    fishers = [random_tree(rng, positive=True) for _ in range(3)]
    stars = [random_tree(rng) for _ in range(3)]
    theta = random_tree(rng)

    @self.variant
    def online(theta):
      penalty = ewc.penalty_init(theta)
      for f, s in zip(fishers, stars):
        penalty = ewc.consolidate(penalty, f, s, online=True, gamma=0.5)
      return ewc.penalty_value(penalty, theta), penalty

    value, penalty = online(theta)
    # F = 0.5 (0.5 F_0 + F_1) + F_2, anchored at theta*_2 only.
    a = jax.tree.map(lambda f0, f1, f2: 0.25 * f0 + 0.5 * f1 + f2, *fishers)
    chex.assert_trees_all_close(penalty.fisher, a, rtol=1e-6)
    chex.assert_trees_all_close(
        penalty.fisher_anchor, jax.tree.map(jnp.multiply, a, stars[2]),
        rtol=1e-6)
    ref = sum(float(jnp.sum(a[k] * (theta[k] - stars[2][k]) ** 2)) for k in a)
    np.testing.assert_allclose(value, ref, rtol=1e-5)


class EWCStreamTest(chex.TestCase):
  """Three tasks of three batches: a jitted step (one trace) and the engine's
  scan; the Fisher is taken once per new task, at the parameters right
  before the task's first batch, on the previous task's buffer."""

  def _run(self, config):
    params = fixtures.make_params()
    tasks = [task_batches(k, 3) for k in range(3)]

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, batch, key):
      return ewc.update(state, batch, key, loss_fn=MLP_LOSS, config=config)

    state = ewc.init(params, tasks[0][0], config)
    before, consolidated = [], []
    for k, batches in enumerate(tasks):
      before.append(state)  # the state right before task k's first batch
      for i, batch in enumerate(batches):
        state, metrics = step(state, batch, jax.random.PRNGKey(10 * k + i))
        consolidated.append(float(metrics['consolidated']))
        self.assertTrue(np.isfinite(float(metrics['penalty'])))
    before.append(state)
    return tasks, before, consolidated

  def test_consolidates_once_per_new_task(self):
    config = ewc.EWCConfig(lr=0.1, lam=5.0, fisher_samples=5)
    tasks, before, consolidated = self._run(config)
    self.assertEqual(consolidated, [0, 0, 0, 1, 0, 0, 1, 0, 0])
    self.assertEqual([int(s.consolidations) for s in before], [0, 0, 1, 2])
    self.assertEqual([int(s.task) for s in before], [-1, 0, 1, 2])
    # Task k's buffer: 5 of its 12 samples, nothing from another task.
    for k in (0, 1):
      buf = before[k + 1].buffer
      self.assertEqual(int(buf.seen), 12)
      np.testing.assert_array_equal(buf.x[:, 0], k)
      seen = {tuple(np.asarray(r)) for b in tasks[k] for r in b.x}
      self.assertTrue({tuple(np.asarray(r)) for r in buf.x} <= seen)
    # The penalty after task 1's first batch: task 0's Fisher at the params
    # right before that batch, on task 0's buffer.
    expected = ewc.penalty_init(before[0].params)
    for k in (1, 2):
      theta = before[k].params
      samples, weights = ewc.buffer_batch(before[k].buffer)
      np.testing.assert_array_equal(weights, 1.0)
      f = MLP_FISHER(theta, samples, weights)
      expected = ewc.consolidate(expected, f, theta)
      got = before[k + 1].penalty  # unchanged during the rest of task k
      chex.assert_trees_all_close(got, expected, rtol=1e-5, atol=1e-7)
    # theta* of the first consolidation is B / A.
    first = ewc.consolidate(
        ewc.penalty_init(before[0].params),
        MLP_FISHER(before[1].params, *ewc.buffer_batch(before[1].buffer)),
        before[1].params)
    for a, b, p in zip(*(jax.tree.leaves(t) for t in (
        first.fisher, first.fisher_anchor, before[1].params))):
      mask = np.asarray(a) > 1e-8
      self.assertTrue(mask.any())
      np.testing.assert_allclose(np.asarray(b)[mask] / np.asarray(a)[mask],
                                 np.asarray(p)[mask], rtol=1e-4)

  def test_online_decay_in_stream(self):
    config = ewc.EWCConfig(lr=0.1, lam=5.0, fisher_samples=5, online=True,
                           ewc_gamma=0.5)
    _, before, _ = self._run(config)
    fishers = [MLP_FISHER(before[k].params, *ewc.buffer_batch(before[k].buffer))
               for k in (1, 2)]
    a = jax.tree.map(lambda f1, f2: 0.5 * f1 + f2, *fishers)
    got = before[3].penalty
    chex.assert_trees_all_close(got.fisher, a, rtol=1e-5, atol=1e-8)
    chex.assert_trees_all_close(
        got.fisher_anchor, jax.tree.map(jnp.multiply, a, before[2].params),
        rtol=1e-5, atol=1e-8)

  def test_engine_scan_matches_step_loop_with_one_compile(self):
    config = ewc.EWCConfig(lr=0.1, lam=5.0, fisher_samples=5)
    tasks = [task_batches(k, 3) for k in range(3)]
    method = ewc.method(MLP_LOSS, tasks[0][0], config)
    train_task = jax.jit(engine.make_train_task(method))
    state = method.init(fixtures.make_params(), jax.random.PRNGKey(0))
    ref = ewc.init(fixtures.make_params(), tasks[0][0], config)
    step = jax.jit(functools.partial(ewc.update, loss_fn=MLP_LOSS,
                                     config=config))
    for k, batches in enumerate(tasks):
      state, losses = train_task(state, *(jnp.stack(a) for a in zip(*batches)),
                                 jax.random.PRNGKey(k))
      chex.assert_shape(losses, (3,))
      self.assertEqual(int(state.consolidations), k)
      # The engine's keys (one per batch), stepped one batch at a time.
      keys = jax.random.split(jax.random.PRNGKey(k), 3)
      for batch, key in zip(batches, keys):
        ref, _ = step(ref, batch, key)
      chex.assert_trees_all_close(state, ref, atol=1e-5)
    self.assertEqual(train_task._cache_size(), 1)

  def test_config_validation(self):
    for bad, msg in ((dict(lr=0.0), 'lr must be > 0'),
                     (dict(lam=-1.0), 'lam must be >= 0'),
                     (dict(fisher_samples=0), 'fisher_samples'),
                     (dict(ewc_gamma=1.5), 'ewc_gamma')):
      with self.assertRaisesRegex(ValueError, msg):
        ewc.EWCConfig(**bad).validate()


def quadratic_loss(params, batch, weights):
  """0.5 sum_j k_j (theta_j - x_ij)^2 with k = [1, 1/2], mean over i."""
  k = jnp.asarray([1.0, 0.5])
  losses = 0.5 * jnp.sum(k * (params['theta'] - batch.x) ** 2, axis=-1)
  return weighted_mean(losses, weights)


def target(task, values):
  return Batch(jnp.asarray([values], jnp.float32), jnp.zeros(1, jnp.int32),
               jnp.full((1,), task, jnp.int32))


class SITest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_path_integral_and_omega_by_hand(self):
    config = si.SIConfig(lr=0.5, c=0.5, xi=0.1)
    update = self.variant(functools.partial(si.update, loss_fn=quadratic_loss,
                                            config=config))
    key = jax.random.PRNGKey(0)
    state = si.init({'theta': jnp.zeros(2)}, target(0, [0, 0]), config)
    # Task 0, theta = [0, 0], grad = k (theta - x), delta = -0.5 grad.
    # x = [2, 4]: g = [-2, -2], delta = [1, 1], theta = [1, 1],
    #   w = -g delta = [2, 2].
    # x = [3, 0]: g = [-2, 1/2], delta = [1, -1/4], theta = [2, 3/4],
    #   w = [2 + 2, 2 + 1/8] = [4, 17/8].
    state, _ = update(state, target(0, [2, 4]), key)
    chex.assert_trees_all_close(state.path, {'theta': jnp.asarray([2., 2.])})
    state, _ = update(state, target(0, [3, 0]), key)
    chex.assert_trees_all_close(state.params,
                                {'theta': jnp.asarray([2.0, 0.75])})
    chex.assert_trees_all_close(state.path,
                                {'theta': jnp.asarray([4.0, 17 / 8])})
    np.testing.assert_array_equal(state.omega['theta'], 0.0)
    # Task 1's first batch consolidates: Delta = [2, 3/4] - [0, 0],
    # Omega = w / (Delta^2 + xi) = [4 / 4.1, (17/8) / (9/16 + 0.1)];
    # theta* = [2, 3/4]; w restarts. Its step: the penalty's gradient is
    # 0 at theta*, g = k theta = [2, 3/8], delta = [-1, -3/16],
    # theta = [1, 9/16], w = -g delta = [2, 9/128].
    omega = np.asarray([4 / 4.1, (17 / 8) / (9 / 16 + 0.1)])
    state, metrics = update(state, target(1, [0, 0]), key)
    self.assertEqual(float(metrics['consolidated']), 1.0)
    chex.assert_trees_all_close(state.omega, {'theta': jnp.asarray(omega)},
                                rtol=1e-6)
    chex.assert_trees_all_close(state.anchor,
                                {'theta': jnp.asarray([2.0, 0.75])})
    chex.assert_trees_all_close(state.params,
                                {'theta': jnp.asarray([1.0, 9 / 16])})
    chex.assert_trees_all_close(state.path,
                                {'theta': jnp.asarray([2.0, 9 / 128])},
                                rtol=1e-6)
    # Second step of task 1 (x = 0): g = [1, 9/32] is the unregularised
    # gradient; delta also carries the penalty's 2 c Omega (theta - theta*)
    # = Omega [-1, -23/16]; w gains -g delta, not -(g + penalty) delta.
    theta = np.asarray([1.0, 9 / 16])
    g = np.asarray([1.0, 0.5]) * theta
    delta = -0.5 * (g + 2 * 0.5 * omega * (theta - [2.0, 0.75]))
    state, metrics = update(state, target(1, [0, 0]), key)
    self.assertEqual(float(metrics['consolidated']), 0.0)
    np.testing.assert_allclose(
        metrics['penalty'], 0.5 * np.sum(omega * (theta - [2, 0.75]) ** 2),
        rtol=1e-6)
    chex.assert_trees_all_close(state.params,
                                {'theta': jnp.asarray(theta + delta)},
                                rtol=1e-6)
    chex.assert_trees_all_close(
        state.path, {'theta': jnp.asarray([2.0, 9 / 128] - g * delta)},
        rtol=1e-6)
    self.assertFalse(np.allclose(state.path['theta'],
                                 [2.0, 9 / 128] - (g + 2 * 0.5 * omega * (
                                     theta - [2.0, 0.75])) * delta))
    self.assertEqual(int(state.consolidations), 1)

  def test_consolidate_clips_negative_omega(self):
    # Omega = max(Omega + w / (Delta^2 + xi), 0): [1 + 1/(1 + 1), 1 - 3/1].
    out = si.consolidate({'a': jnp.asarray([1.0, 1.0])},
                         {'a': jnp.asarray([1.0, -3.0])},
                         {'a': jnp.asarray([0.0, 2.0])},
                         {'a': jnp.asarray([1.0, 2.0])}, xi=1.0)
    chex.assert_trees_all_close(out, {'a': jnp.asarray([1.5, 0.0])})

  def test_stream_one_trace_and_engine_scan(self):
    config = si.SIConfig(lr=0.1, c=0.5, xi=0.1)
    tasks = [task_batches(k, 3) for k in range(3)]

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(state, batch, key):
      return si.update(state, batch, key, loss_fn=MLP_LOSS, config=config)

    state = si.init(fixtures.make_params(), tasks[0][0], config)
    ends = []
    for batches in tasks:
      ends.append(state.params)
      for batch in batches:
        state, _ = step(state, batch, jax.random.PRNGKey(0))
    self.assertEqual(int(state.consolidations), 2)
    chex.assert_trees_all_close(state.anchor, ends[2])
    self.assertGreater(float(optax.tree.sum(state.omega)), 0.0)

    method = si.method(MLP_LOSS, tasks[0][0], config)
    train_task = jax.jit(engine.make_train_task(method))
    scanned = method.init(fixtures.make_params(), jax.random.PRNGKey(0))
    for k, batches in enumerate(tasks):
      scanned, _ = train_task(scanned, *(jnp.stack(a) for a in zip(*batches)),
                              jax.random.PRNGKey(k))
    self.assertEqual(train_task._cache_size(), 1)
    chex.assert_trees_all_close(scanned, state, atol=1e-5)

  def test_config_validation(self):
    for bad, msg in ((dict(lr=0.0), 'lr must be > 0'),
                     (dict(c=-1.0), 'c must be >= 0'),
                     (dict(xi=0.0), 'xi must be > 0')):
      with self.assertRaisesRegex(ValueError, msg):
        si.SIConfig(**bad).validate()


if __name__ == '__main__':
  absltest.main()
