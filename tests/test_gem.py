"""GEM and A-GEM: the dual QP against brute force, the projections against
hand-computed numbers, the methods' steps against the formulas, the
episodic memory's contents, jit/no-jit agreement and one trace."""

import functools
import itertools

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize

import fixtures
from emcl_jax import clipping
from emcl_jax import trees
from emcl_jax.training import engine
from emcl_jax.methods import gem_qp
from emcl_jax.methods import projection
from emcl_jax.base import Batch
from emcl_jax.losses import cross_entropy
from emcl_jax.methods import agem
from emcl_jax.methods import gem


def brute_force_dual(gram, dots, margin, eps):
  """GEM's dual QP by enumerating active sets (exact, float64): the KKT
  point u >= 0 of 1/2 u^T P u + c^T u, v = u + margin."""
  k = len(dots)
  p = gram + eps * np.eye(k)
  c = p @ np.full(k, margin) + dots
  for size in range(k + 1):
    for free in itertools.combinations(range(k), size):
      free = list(free)
      u = np.zeros(k)
      if free:
        u[free] = np.linalg.solve(p[np.ix_(free, free)], -c[free])
      grad = p @ u + c
      bound = [j for j in range(k) if j not in free]
      if np.all(u >= 0) and np.all(grad[bound] >= -1e-12):
        return u + margin
  raise AssertionError('no KKT point')


# Compiled once per shape and dtype; margin and eps are traced arguments.
PROJECT = jax.jit(projection.gem_project)
DUAL = jax.jit(gem_qp.gem_dual)


def random_problem(rng, k, p):
  """Task gradients sharing a direction, and a gradient against it, so
  that some but usually not all constraints are violated."""
  base = rng.normal(size=p)
  big_g = base + rng.normal(size=(k, p))
  g = -0.5 * base + rng.normal(size=p)
  return big_g, g


class GEMProjectionTest(chex.TestCase):

  def test_dual_matches_brute_force_and_primal(self):
    # k = 1..4 seen tasks, padded to 4 rows (the rest masked off), so one
    # compiled solver serves every problem; margin and eps are traced.
    rng = np.random.default_rng(0)
    solved = 0
    with jax.enable_x64(True):
      for trial in range(40):
        k = 1 + trial % 4
        big_g, g = random_problem(rng, k, 6)
        padded = np.concatenate([big_g, rng.normal(size=(4 - k, 6))])
        mask = jnp.arange(4) < k
        margin, eps = (0.0, 0.0) if trial % 2 else (0.5, 1e-3)
        g_tilde, violated, info = PROJECT(jnp.asarray(g), jnp.asarray(padded),
                                          mask, margin=margin, eps=eps)
        if not (big_g @ g < 0).any():
          self.assertFalse(bool(violated))
          np.testing.assert_array_equal(g_tilde, g)
          continue
        solved += 1
        self.assertTrue(bool(violated))
        self.assertTrue(bool(info.converged))
        v_ref = brute_force_dual(big_g @ big_g.T, big_g @ g, margin, eps)
        v, _ = DUAL(jnp.asarray(padded @ padded.T), jnp.asarray(padded @ g),
                    mask, margin=margin, eps=eps)
        np.testing.assert_allclose(v[:k], v_ref, atol=1e-9)
        np.testing.assert_array_equal(v[k:], 0.0)
        np.testing.assert_allclose(g_tilde, big_g.T @ v_ref + g, atol=1e-9)
        # Every constraint holds (up to the ridge: <g~, G_k> >= -eps v_k).
        self.assertGreaterEqual(
            float(np.min(big_g @ np.asarray(g_tilde) + eps * v_ref)), -1e-9)
        if margin == 0:
          # The paper's primal: the closest vector to g with G z >= 0.
          primal = optimize.minimize(
              lambda z: 0.5 * np.sum((z - g) ** 2), g, jac=lambda z: z - g,
              constraints=[{'type': 'ineq', 'fun': lambda z: big_g @ z,
                            'jac': lambda z: big_g}],
              method='SLSQP', options={'ftol': 1e-14, 'maxiter': 500})
          np.testing.assert_allclose(g_tilde, primal.x, atol=1e-6)
    self.assertGreater(solved, 20)

  def test_masked_tasks_are_ignored(self):
    rng = np.random.default_rng(1)
    big_g, g = random_problem(rng, 4, 6)
    mask = np.array([True, False, True, False])
    garbage = big_g.copy()
    garbage[~mask] = -1e3 * g  # would be violated if it counted
    seen = big_g[mask]
    self.assertTrue((seen @ g < 0).any())
    with jax.enable_x64(True):
      g_tilde, violated, _ = PROJECT(jnp.asarray(g), jnp.asarray(garbage),
                                     jnp.asarray(mask), margin=0.5, eps=0.0)
      v, _ = DUAL(jnp.asarray(garbage @ garbage.T), jnp.asarray(garbage @ g),
                  jnp.asarray(mask), margin=0.5, eps=0.0)
    self.assertTrue(bool(violated))
    v_ref = brute_force_dual(seen @ seen.T, seen @ g, 0.5, 0.0)
    np.testing.assert_allclose(np.asarray(v)[mask], v_ref, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(v)[~mask], 0.0)
    np.testing.assert_allclose(g_tilde, seen.T @ v_ref + g, atol=1e-10)

  def test_pytree_form_with_row_clipping_matches_flat(self):
    # G as a pytree of stacked leaves, each task clipped to norm 1 inside
    # gem_project, against the flat matrix of the clipped rows.
    rng = np.random.default_rng(4)
    big_g, g = random_problem(rng, 4, 6)
    big_g[0] *= 0.1  # one row below the clip norm, the others above
    tree_g = {'a': g[:2], 'b': g[2:].reshape(2, 2)}
    tree_big = {'a': big_g[:, :2], 'b': big_g[:, 2:].reshape(4, 2, 2)}
    mask = jnp.array([True, True, True, False])
    with jax.enable_x64(True):
      got, violated, _ = jax.jit(functools.partial(
          projection.gem_project, clip_norm=1.0, margin=0.5, eps=1e-3))(
              jax.tree.map(jnp.asarray, tree_g),
              jax.tree.map(jnp.asarray, tree_big), mask)
      clipped = jax.vmap(lambda row: clipping.clip_by_global_norm(row, 1.0))(
          jnp.asarray(big_g))
      flat, _, _ = PROJECT(jnp.asarray(g), clipped, mask, margin=0.5,
                           eps=1e-3)
      got = trees.ravel(got)[0]
    self.assertTrue(bool(violated))
    self.assertLess(np.linalg.norm(clipped[0]), 1.0)
    np.testing.assert_allclose(got, flat, atol=1e-10)

  def test_many_tasks_float32_match_long_projected_gradient_solve(self):
    # 40 tasks (30 seen), float32, with the official margin and ridge,
    # against 20000 accelerated projected-gradient steps in float64.
    rng = np.random.default_rng(2)
    k, p, margin, eps = 40, 300, 0.1, 1e-3
    base = rng.normal(size=(3, p))
    big_g = rng.normal(size=(k, 3)) @ base + 0.3 * rng.normal(size=(k, p))
    g = 2.0 * rng.normal(size=p)
    mask = np.arange(k) < 30
    g_tilde, violated, info = jax.jit(functools.partial(
        projection.gem_project, margin=margin, eps=eps))(
            jnp.asarray(g, jnp.float32), jnp.asarray(big_g, jnp.float32),
            jnp.asarray(mask))
    seen = big_g[mask]
    q = seen @ seen.T + eps * np.eye(30)
    c = seen @ g
    step = 1.0 / np.linalg.eigvalsh(q).max()
    x = y = np.full(30, margin)
    t = 1.0
    for _ in range(20000):
      x_new = np.maximum(margin, y - step * (q @ y + c))
      t_new = (1 + np.sqrt(1 + 4 * t * t)) / 2
      y = x_new + (t - 1) / t_new * (x_new - x)
      x, t = x_new, t_new
    expected = seen.T @ x + g
    self.assertTrue(bool(violated))
    self.assertTrue(bool(info.converged))
    self.assertGreater(int((x > margin + 1e-3).sum()), 3)  # not trivial
    np.testing.assert_allclose(g_tilde, expected,
                               atol=1e-4 * np.abs(expected).max())

  @chex.variants(with_jit=True, without_jit=True)
  def test_no_violation_returns_g_exactly(self):
    g = jnp.array([0.3, -1.7, 2.9, 0.1], jnp.float32)
    big_g = jnp.array([[1.0, 0.0, 0.0, 0.0],     # <g, G_0> = 0.3
                       [0.0, 0.0, 1.0, 5.0],     # 3.4
                       [0.0, 1.0, 0.0, 0.0]])    # -1.7, but masked off
    mask = jnp.array([True, True, False])
    project = self.variant(functools.partial(projection.gem_project,
                                             margin=0.5, eps=1e-3))
    g_tilde, violated, info = project(g, big_g, mask)
    np.testing.assert_array_equal(g_tilde, g)
    self.assertFalse(bool(violated))
    self.assertEqual(int(info.iterations), 0)
    # With the third task seen, <g, G_2> < 0 and g moves. The G_k are
    # orthogonal, so the dual separates: v_k = max(0.5, -<g, G_k> /
    # (|G_k|^2 + 1e-3)) = (0.5, 0.5, 1.7 / 1.001), and
    # g~ = g + 0.5 G_0 + 0.5 G_1 + v_2 G_2 = (0.8, -1.7e-3 / 1.001, 3.4, 2.6)
    # (<g~, G_2> = -1e-3 v_2: the ridge's slack).
    g_tilde, violated, _ = project(g, big_g, jnp.ones(3, bool))
    self.assertTrue(bool(violated))
    np.testing.assert_allclose(g_tilde, [0.8, -1.7e-3 / 1.001, 3.4, 2.6],
                               rtol=1e-5, atol=1e-6)

  def test_one_task_closed_form(self):
    # k = 1: v = max(margin, -<g, G> / (|G|^2 + eps)).
    # g = (1, -2), G = (0, 1): <g, G> = -2, |G|^2 = 1.
    g = jnp.array([1.0, -2.0])
    big_g = jnp.array([[0.0, 1.0]])
    g_tilde, _, _ = PROJECT(g, big_g, jnp.array([True]), margin=0.0,
                            eps=0.0)
    np.testing.assert_allclose(g_tilde, [1.0, 0.0], atol=1e-6)
    g_tilde, _, _ = PROJECT(g, big_g, jnp.array([True]), margin=3.0, eps=1.0)
    # v = max(3, 2 / 2) = 3: g~ = (1, -2 + 3).
    np.testing.assert_allclose(g_tilde, [1.0, 1.0], atol=1e-6)


class AGEMProjectionTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_hand_examples(self):
    project = self.variant(projection.agem_project)
    # 3D: g = (1, 2, 3), g_ref = (1, -1, 0): <g, g_ref> = -1, |g_ref|^2 = 2,
    # g~ = g + 1/2 g_ref = (1.5, 1.5, 3), and <g~, g_ref> = 0.
    g_tilde, violated = project(jnp.array([1.0, 2.0, 3.0]),
                                jnp.array([1.0, -1.0, 0.0]))
    np.testing.assert_allclose(g_tilde, [1.5, 1.5, 3.0], atol=1e-7)
    self.assertTrue(bool(violated))
    # 2D: g = (3, -4), g_ref = (0, 2): <g, g_ref> = -8, |g_ref|^2 = 4,
    # g~ = g + 2 g_ref = (3, 0).
    g_tilde, _ = project(jnp.array([3.0, -4.0]), jnp.array([0.0, 2.0]))
    np.testing.assert_allclose(g_tilde, [3.0, 0.0], atol=1e-7)
    # No violation (<g, g_ref> = 2 > 0) or no reference: g exactly.
    g = jnp.array([0.1, 0.7])
    for g_ref in (jnp.array([2.0, 0.0]), jnp.zeros(2)):
      g_tilde, violated = project(g, g_ref)
      np.testing.assert_array_equal(g_tilde, g)
      self.assertFalse(bool(violated))

  @chex.variants(with_jit=True, without_jit=True)
  def test_pytree_equals_flat(self):
    # The 3D hand example split over two leaves: the same g~ = (1.5, 1.5, 3).
    project = self.variant(projection.agem_project)
    g = {'w': jnp.array([1.0, 2.0]), 'b': jnp.array([3.0])}
    g_ref = {'w': jnp.array([1.0, -1.0]), 'b': jnp.array([0.0])}
    g_tilde, violated = project(g, g_ref)
    np.testing.assert_allclose(g_tilde['w'], [1.5, 1.5], atol=1e-7)
    np.testing.assert_allclose(g_tilde['b'], [3.0], atol=1e-7)
    self.assertTrue(bool(violated))
    self.assertEqual(float(trees.tree_vdot(g, g_ref)), -1.0)

  def test_ravel_round_trip(self):
    tree = {'a': jnp.arange(3.0), 'b': jnp.ones((2, 2))}
    flat, unravel = trees.ravel(tree)
    np.testing.assert_array_equal(flat, [0, 1, 2, 1, 1, 1, 1])
    chex.assert_trees_all_equal(unravel(flat), tree)
    rows = trees.ravel_rows(jax.tree.map(lambda x: jnp.stack([x, 2 * x]),
                                         tree))
    np.testing.assert_array_equal(rows, [[0, 1, 2, 1, 1, 1, 1],
                                         [0, 2, 4, 2, 2, 2, 2]])


LOSS = cross_entropy(fixtures.mlp_apply)


def task_batches(task, num_batches, n=10, conflict=False):
  """Batches of one task; x[:, 0] = task, x[:, 1] = index in the stream, so
  a stored sample tells where it came from. With `conflict`, the labels
  are shifted, which makes the task's gradients fight task 0's."""
  rng = np.random.default_rng(10)  # the same inputs for every task
  x = rng.normal(size=(num_batches * n, 5)).astype(np.float32)
  y = rng.integers(0, 3, num_batches * n)
  if conflict:
    y = (y + 1) % 3
  x[:, 0] = task
  x[:, 1] = np.arange(num_batches * n)
  t = np.full(num_batches * n, task, np.int32)
  return [Batch(jnp.asarray(x[i * n:(i + 1) * n]),
                jnp.asarray(y[i * n:(i + 1) * n]),
                jnp.asarray(t[i * n:(i + 1) * n])) for i in range(num_batches)]


# One config per method for every stream test below, so each method's
# jitted update compiles once for the whole file; each is traced once.
GEM_CONFIG = gem.GEMConfig(lr=0.1, memory_per_task=15, max_tasks=3,
                           memory_strength=0.5, qp_eps=1e-3,
                           grad_clip_norm=2.0, glances=2)
AGEM_CONFIG = agem.AGEMConfig(lr=0.1, memory_size=10, replay_size=10,
                              grad_clip_norm=2.0)


@functools.cache
def jitted_update(module, config):
  """module.update, jitted, failing if it is ever traced a second time."""

  def update(state, batch, key):
    return module.update(state, batch, key, loss_fn=LOSS, config=config)

  return jax.jit(chex.assert_max_traces(update, n=1))


@jax.jit
def flat_grad(params, batch):
  return trees.ravel(jax.grad(LOSS)(params, batch,
                                    jnp.ones(batch.y.shape)))[0]


def clipped_grad(params, batch):
  """The flat gradient of the mean loss, clipped to norm 2, float64."""
  g = np.asarray(flat_grad(params, batch), np.float64)
  return g * min(1.0, 2.0 / (np.linalg.norm(g) + 1e-6))


class GEMMethodTest(chex.TestCase):

  def test_memory_keeps_each_task_last_samples(self):
    stream = task_batches(0, 2) + task_batches(1, 3)
    state = gem.init(fixtures.make_params(), stream[0], GEM_CONFIG)
    step = jitted_update(gem, GEM_CONFIG)
    for i, batch in enumerate(stream):
      state, _ = step(state, batch, jax.random.PRNGKey(i))
    mem = state.memory
    np.testing.assert_array_equal(mem.task, [0, 1, -1])
    np.testing.assert_array_equal(mem.count, [20, 30, 0])
    # Task 0 saw samples 0..19: sample i sits in slot i mod 15, so the ring
    # holds 15..19 in slots 0..4 and 5..14 in slots 5..14.
    np.testing.assert_array_equal(mem.x[0, :, 0], 0)
    np.testing.assert_array_equal(mem.x[0, :, 1],
                                  list(range(15, 20)) + list(range(5, 15)))
    # Task 1 saw 0..29: its last 15 (15..29) in slots 0..14.
    np.testing.assert_array_equal(mem.x[1, :, 0], 1)
    np.testing.assert_array_equal(mem.x[1, :, 1], np.arange(15, 30))
    labels = np.concatenate([np.asarray(b.y) for b in stream[2:]])
    np.testing.assert_array_equal(mem.y[1], labels[15:30])
    batches, weights = gem.memory_batches(mem)
    np.testing.assert_array_equal(weights.sum(1), [15, 15, 0])
    np.testing.assert_array_equal(batches.t[1], 1)
    # A batch larger than the ring keeps only its last samples; a fourth
    # task (max_tasks = 3) takes over row 0 and starts afresh.
    add = jax.jit(gem.memory_add)
    small = add(gem.memory_init(3, 4, stream[0]), stream[0], jnp.asarray(3))
    np.testing.assert_array_equal(small.task, [3, -1, -1])
    np.testing.assert_array_equal(small.count, [10, 0, 0])
    np.testing.assert_array_equal(small.x[0, :, 1], [8, 9, 6, 7])
    taken = add(mem, stream[0], jnp.asarray(3))
    np.testing.assert_array_equal(taken.count, [10, 30, 0])
    np.testing.assert_array_equal(taken.x[0, :10, 1], np.arange(10))

  def test_steps_match_the_formulas(self):
    # Two batches of task 0 (nothing to project: plain clipped SGD), then a
    # task-1 batch relabelling task 0's inputs, which conflicts with task
    # 0's memory. One past task, so the dual has the closed form
    # v = max(margin, -<g, G> / (|G|^2 + eps)). Two glances per batch.
    step = jitted_update(gem, GEM_CONFIG)
    task0 = task_batches(0, 2)
    conflict = task_batches(1, 1, conflict=True)[0]
    params = fixtures.make_params()
    state = gem.init(params, conflict, GEM_CONFIG)
    flat, unravel = trees.ravel(params)
    flat = np.asarray(flat, np.float64)
    projected = 0
    for i, batch in enumerate(task0 + [conflict]):
      memory = None
      if i == 2:
        memory = Batch(state.memory.x[0], state.memory.y[0],
                       jnp.zeros(15, jnp.int32))
      for _ in range(2):
        theta = unravel(jnp.asarray(flat, jnp.float32))
        g = clipped_grad(theta, batch)
        if memory is not None:
          big_g = clipped_grad(theta, memory)
          if g @ big_g < 0:
            projected += 1
            g = g + max(0.5, -(g @ big_g) / (big_g @ big_g + 1e-3)) * big_g
        flat = flat - 0.1 * g
      state, metrics = step(state, batch, jax.random.PRNGKey(i))
      np.testing.assert_allclose(trees.ravel(state.params)[0], flat,
                                 atol=1e-5)
    self.assertEqual(projected, 2)
    self.assertEqual(float(metrics['projected']), 1.0)
    self.assertEqual(int(metrics['qp_iterations']), 1)

  def test_config_validation(self):
    for bad, msg in ((dict(lr=0.0), 'lr must be > 0'),
                     (dict(memory_per_task=0), 'memory_per_task must be'),
                     (dict(max_tasks=0), 'max_tasks must be'),
                     (dict(memory_strength=-1.0), 'memory_strength must be'),
                     (dict(glances=0), 'glances must be')):
      with self.assertRaisesRegex(ValueError, msg):
        gem.GEMConfig(**bad).validate()


class AGEMMethodTest(chex.TestCase):

  def test_step_matches_the_formula(self):
    step = jitted_update(agem, AGEM_CONFIG)
    batch = task_batches(1, 1, conflict=True)[0]
    state = agem.init(fixtures.make_params(), batch, AGEM_CONFIG)
    state, metrics = step(state, task_batches(0, 1)[0], jax.random.PRNGKey(0))
    # During task 0 the reference excludes task 0: plain SGD, no projection.
    self.assertEqual(float(metrics['projected']), 0.0)
    memory = state.memory
    self.assertEqual(int(memory.seen), 10)
    np.testing.assert_array_equal(memory.t, 0)
    np.testing.assert_array_equal(memory.x[:, 0], 0)
    before = state.params
    state, metrics = step(state, batch, jax.random.PRNGKey(5))
    self.assertEqual(float(metrics['projected']), 1.0)
    # replay_size = memory_size: the reference batch is the whole memory.
    g = clipped_grad(before, batch)
    g_ref = clipped_grad(before, Batch(memory.x, memory.y, memory.t))
    dot = g @ g_ref
    self.assertLess(dot, 0.0)
    expected = trees.ravel(before)[0] - 0.1 * (
        g - dot / (g_ref @ g_ref) * g_ref)
    np.testing.assert_allclose(trees.ravel(state.params)[0], expected,
                               atol=1e-5)
    self.assertEqual(int(state.memory.seen), 20)

  def test_reference_batch_leaves_out_the_current_task(self):
    step = jitted_update(agem, AGEM_CONFIG)
    stream = task_batches(0, 1) + task_batches(1, 1)
    state = agem.init(fixtures.make_params(), stream[0], AGEM_CONFIG)
    for i, b in enumerate(stream):
      state, _ = step(state, b, jax.random.PRNGKey(i))
    config = AGEM_CONFIG._replace(replay_size=6)
    replay, weights = agem.reference_batch(state.memory, jnp.asarray(1),
                                           jax.random.PRNGKey(0), config)
    self.assertTrue(np.any(np.asarray(replay.t) == 1))
    np.testing.assert_array_equal(weights, np.asarray(replay.t) != 1)
    np.testing.assert_array_equal(np.asarray(replay.x[:, 0]),
                                  np.asarray(replay.t))
    _, all_w = agem.reference_batch(state.memory, jnp.asarray(1),
                                    jax.random.PRNGKey(0),
                                    config._replace(past_tasks_only=False))
    np.testing.assert_array_equal(all_w, 1.0)

  def test_config_validation(self):
    for bad, msg in ((dict(lr=-1.0), 'lr must be > 0'),
                     (dict(memory_size=0), 'needs a memory'),
                     (dict(memory_size=10, replay_size=20), 'exceeds'),
                     (dict(glances=0), 'glances must be')):
      with self.assertRaisesRegex(ValueError, msg):
        agem.AGEMConfig(**bad).validate()


class StreamTest(chex.TestCase):
  """Both methods over a short two-task stream: the jitted step (traced
  once), and the engine's scan over each task's batches, agree."""

  def _check(self, module, config):
    params = fixtures.make_params()
    # Task 1 relabels task 0's inputs: every one of its steps conflicts
    # with the memory, and no step of task 0 has anything to conflict with.
    stream = task_batches(0, 1) * 3 + task_batches(1, 1, conflict=True) * 3
    task_keys = [jax.random.PRNGKey(10), jax.random.PRNGKey(11)]
    step = jitted_update(module, config)
    state = module.init(params, stream[0], config)
    projected = 0.0
    for i, batch in enumerate(stream):
      key = jax.random.split(task_keys[i // 3], 3)[i % 3]
      state, metrics = step(state, batch, key)
      projected += float(metrics['projected'])
    self.assertEqual(int(state.step), 6)
    self.assertEqual(projected, 3.0)
    self.assertFalse(np.allclose(state.params['w1'], params['w1']))

    # The engine: one compiled lax.scan per task, the same keys per batch.
    method = module.method(LOSS, stream[0], config)
    train_task = jax.jit(engine.make_train_task(method))
    scanned = method.init(params, jax.random.PRNGKey(0))
    for task in range(2):
      batches = stream[3 * task:3 * task + 3]
      scanned, losses = train_task(
          scanned, jnp.stack([b.x for b in batches]),
          jnp.stack([b.y for b in batches]),
          jnp.stack([b.t for b in batches]), task_keys[task])
      chex.assert_shape(losses, (3,))
    self.assertEqual(train_task._cache_size(), 1)
    chex.assert_trees_all_close(scanned, state, atol=1e-5)

  def test_gem_stream(self):
    self._check(gem, GEM_CONFIG)

  def test_agem_stream(self):
    self._check(agem, AGEM_CONFIG)


if __name__ == '__main__':
  absltest.main()
