"""La-MAML, C-MAML, Sync: meta-gradients against hand formulas and finite
differences, the three update rules, jit/no-jit agreement, one trace."""

import functools

from absl.testing import absltest
import pytest
import chex
import jax
import jax.numpy as jnp
import numpy as np

import runs
from emcl_jax import clipping
from emcl_jax.base import Batch
from emcl_jax.methods import lamaml


def _model(params, x):
  """A tiny two-layer tanh network (nonlinear, so second order matters)."""
  return jnp.tanh(x @ params['w1']) @ params['w2']


def _loss(params, batch, weights):
  logits = _model(params, batch.x)
  logp = jax.nn.log_softmax(logits)
  nll = -jnp.take_along_axis(logp, batch.y[:, None], axis=1)[:, 0]
  return jnp.sum(nll * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def _problem(dtype=jnp.float32, k=3, m=5):
  rng = np.random.default_rng(0)
  params = {'w1': jnp.asarray(rng.normal(size=(4, 6)), dtype),
            'w2': jnp.asarray(rng.normal(size=(6, 3)), dtype)}
  alpha = jax.tree.map(
      lambda p: jnp.asarray(rng.uniform(0.05, 0.3, p.shape), dtype), params)
  batch = Batch(jnp.asarray(rng.normal(size=(k, 4)), dtype),
                jnp.asarray(rng.integers(0, 3, k)), jnp.zeros(k, jnp.int32))
  meta = Batch(jnp.asarray(rng.normal(size=(m, 4)), dtype),
               jnp.asarray(rng.integers(0, 3, m)), jnp.zeros(m, jnp.int32))
  return params, alpha, batch, meta, jnp.ones(m, dtype)


class LookAheadTest(absltest.TestCase):

  def test_first_order_gradients_match_hand_formula(self):
    # L_meta = (1/k) sum_i L(theta_i), theta_i = theta0 - a * sum_{j<=i} g_j
    # with g_j held constant:  dL/dtheta0 = (1/k) sum_i G_i,
    # dL/da = -(1/k) sum_i (sum_{j<=i} g_j) * G_i  (a > 0 so relu' = 1).
    params, alpha, batch, meta, mw = _problem()
    k = batch.y.shape[0]
    theta, cum = params, jax.tree.map(jnp.zeros_like, params)
    g_theta = g_alpha = jax.tree.map(jnp.zeros_like, params)
    for i in range(k):
      one = Batch(batch.x[i:i + 1], batch.y[i:i + 1], batch.t[i:i + 1])
      g = jax.grad(_loss)(theta, one, jnp.ones(1))
      theta = jax.tree.map(lambda p, gi, a: p - a * gi, theta, g, alpha)
      cum = jax.tree.map(jnp.add, cum, g)
      big_g = jax.grad(_loss)(theta, meta, mw)
      g_theta = jax.tree.map(lambda s, gm: s + gm / k, g_theta, big_g)
      g_alpha = jax.tree.map(lambda s, c, gm: s - c * gm / k, g_alpha, cum,
                             big_g)
    got = jax.grad(lamaml.look_ahead_loss, argnums=(0, 1))(
        params, alpha, batch, meta, mw, loss_fn=_loss, second_order=False)
    chex.assert_trees_all_close(got, (g_theta, g_alpha), atol=1e-5)
    loss, accumulated = lamaml.first_order_meta_gradients(
        params, alpha, batch, meta, mw, loss_fn=_loss)
    chex.assert_trees_all_close(accumulated, (g_theta, g_alpha), atol=1e-5)
    np.testing.assert_allclose(
        loss, lamaml.look_ahead_loss(params, alpha, batch, meta, mw,
                                     loss_fn=_loss), rtol=1e-6)
    # A rate at or below 0 takes no step (relu) and gets no gradient.
    alpha['w1'] = alpha['w1'].at[0, 0].set(-0.1)
    _, (_, g_a) = lamaml.first_order_meta_gradients(
        params, alpha, batch, meta, mw, loss_fn=_loss)
    _, g_ref = jax.grad(lamaml.look_ahead_loss, argnums=(0, 1))(
        params, alpha, batch, meta, mw, loss_fn=_loss)
    self.assertEqual(float(g_a['w1'][0, 0]), 0.0)
    chex.assert_trees_all_close(g_a, g_ref, atol=1e-5)

  def test_second_order_matches_finite_differences(self):
    with jax.enable_x64(True):
      params, alpha, batch, meta, mw = _problem(jnp.float64)
      f = functools.partial(lamaml.look_ahead_loss, batch=batch,
                            meta_batch=meta, meta_weights=mw, loss_fn=_loss,
                            second_order=True)
      g_theta, g_alpha = jax.grad(f, argnums=(0, 1))(params, alpha)
      first_order = jax.grad(
          functools.partial(f, second_order=False), argnums=0)(params, alpha)
      eps = 1e-6
      for name, index in (('w1', (1, 2)), ('w2', (3, 0)), ('w1', (0, 5))):
        for which, grads in ((0, g_theta), (1, g_alpha)):
          args = [params, alpha]
          plus = jax.tree.map(lambda x: x, args[which])
          minus = jax.tree.map(lambda x: x, args[which])
          plus[name] = plus[name].at[index].add(eps)
          minus[name] = minus[name].at[index].add(-eps)
          hi = f(*[plus if w == which else a for w, a in enumerate(args)])
          lo = f(*[minus if w == which else a for w, a in enumerate(args)])
          np.testing.assert_allclose(grads[name][index], (hi - lo) / (2 * eps),
                                     rtol=1e-6, atol=1e-9)
      # The second-order terms are not negligible on this problem.
      diff = max(float(jnp.max(jnp.abs(a - b))) for a, b in zip(
          jax.tree.leaves(g_theta), jax.tree.leaves(first_order)))
      self.assertGreater(diff, 1e-3)


class UpdateTest(chex.TestCase):

  def _first_step(self, config):
    """One update with glances=1 on an empty memory, and the hand result:
    the meta batch is the batch itself (the replay rows are padding)."""
    params, _, batch, _, _ = _problem(k=10)
    state = lamaml.init(params, batch, config)
    key = jax.random.PRNGKey(3)
    new, metrics = jax.jit(functools.partial(
        lamaml.update, loss_fn=_loss, config=config))(state, batch, key)
    k_first, _, _ = jax.random.split(key, 3)
    k_perm, _ = jax.random.split(k_first)
    perm = jax.random.permutation(k_perm, 10)
    shuffled = Batch(*(a[perm] for a in batch))
    loss, (g_theta, g_alpha) = jax.jit(jax.value_and_grad(
        functools.partial(lamaml.look_ahead_loss, loss_fn=_loss),
        argnums=(0, 1)))(params, state.alpha, shuffled, shuffled,
                         jnp.ones(10))
    g_theta = clipping.clip_by_global_norm(g_theta, config.grad_clip_norm)
    g_alpha = clipping.clip_by_global_norm(g_alpha, config.grad_clip_norm)
    return params, state, new, metrics, loss, g_theta, g_alpha

  def test_lamaml_steps_alpha_then_weights_with_new_alpha(self):
    config = lamaml.LaMAMLConfig(glances=1, memory_size=20)
    params, state, new, metrics, loss, g_theta, g_alpha = self._first_step(
        config)
    alpha = jax.tree.map(lambda a, g: a - config.opt_lr * g, state.alpha,
                         g_alpha)
    expected = jax.tree.map(lambda p, g, a: p - jax.nn.relu(a) * g, params,
                            g_theta, alpha)
    chex.assert_trees_all_close(new.alpha, alpha, atol=1e-6)
    chex.assert_trees_all_close(new.params, expected, atol=1e-6)
    np.testing.assert_allclose(metrics['loss'], loss, rtol=1e-6)
    self.assertEqual(int(new.memory.seen), 10)

  def test_cmaml_keeps_rates_and_steps_with_opt_wt(self):
    config = lamaml.LaMAMLConfig(glances=1, memory_size=20, learn_lr=False,
                                 sync_update=True, opt_wt=0.1)
    params, state, new, _, _, g_theta, _ = self._first_step(config)
    chex.assert_trees_all_close(new.alpha, state.alpha)
    chex.assert_trees_all_close(
        new.params, jax.tree.map(lambda p, g: p - 0.1 * g, params, g_theta),
        atol=1e-6)

  def test_sync_learns_rates_but_steps_with_opt_wt(self):
    config = lamaml.LaMAMLConfig(glances=1, memory_size=20, sync_update=True,
                                 opt_wt=0.05)
    params, state, new, _, _, g_theta, g_alpha = self._first_step(config)
    chex.assert_trees_all_close(
        new.alpha, jax.tree.map(lambda a, g: a - config.opt_lr * g,
                                state.alpha, g_alpha), atol=1e-6)
    chex.assert_trees_all_close(
        new.params, jax.tree.map(lambda p, g: p - 0.05 * g, params, g_theta),
        atol=1e-6)

  @chex.variants(without_jit=True)
  def test_stream_jit_agreement_and_one_trace(self):
    # The un-jitted path against the jitted one (a jitted variant would
    # compare the jitted path with itself).
    params, _, batch, _, _ = _problem(k=10)
    config = lamaml.LaMAMLConfig(glances=2, memory_size=15, replay_size=5)
    rng = np.random.default_rng(1)
    xs = jnp.asarray(rng.normal(size=(3, 10, 4)), jnp.float32)
    ys = jnp.asarray(rng.integers(0, 3, (3, 10)))

    @chex.assert_max_traces(n=1)
    def step(state, batch, key):
      return lamaml.update(state, batch, key, loss_fn=_loss, config=config)

    stepped = self.variant(step)
    state = lamaml.init(params, batch, config)
    reference = lamaml.init(params, batch, config)
    reference_step = jax.jit(functools.partial(lamaml.update, loss_fn=_loss,
                                               config=config))
    for i in range(3):
      b = Batch(xs[i], ys[i], jnp.zeros(10, jnp.int32))
      key = jax.random.PRNGKey(i)
      state, _ = stepped(state, b, key)
      reference, _ = reference_step(reference, b, key)
    chex.assert_trees_all_close(state.params, reference.params, atol=1e-5)
    chex.assert_trees_all_close(state.alpha, reference.alpha, atol=1e-5)
    self.assertEqual(int(state.memory.seen), 30)
    self.assertFalse(np.allclose(state.params['w1'], params['w1']))

  def test_rejects_configs_without_memory_or_with_bad_rates(self):
    with self.assertRaisesRegex(ValueError, 'memory_size must be > 0'):
      lamaml.LaMAMLConfig(memory_size=0).validate()
    with self.assertRaisesRegex(ValueError, 'alpha_init must be > 0'):
      lamaml.LaMAMLConfig(alpha_init=0.0).validate()


class LearningTest(absltest.TestCase):

  @pytest.mark.slow
  def test_variants_learn_on_bundled_mnist(self):
    # 2 permuted tasks x 100 real images: every variant learns well above
    # the 10% of chance.
    for name in ('lamaml', 'cmaml', 'sync'):
      r = runs.run('mnist_permutations', name, 0, {
          'data.num_tasks': 2, 'data.samples_per_task': 100})
      self.assertGreater(r['acc'], 50.0, name)
      self.assertEqual(r['config']['learn_lr'], name != 'cmaml')
      self.assertEqual(r['config']['sync_update'], name != 'lamaml')


if __name__ == '__main__':
  absltest.main()
