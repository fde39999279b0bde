"""emcl_jax.update: hand-written reference loop, jit/no-jit, no retracing."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import emcl_jax
from emcl_jax import stream as stream_lib
from emcl_jax.base import Batch
from emcl_jax.losses import cross_entropy
from emcl_jax.methods import finetune


def apply_fn(params, x):
  hidden = jnp.tanh(x @ params['w1'] + params['b1'])
  return hidden @ params['w2'] + params['b2']


def make_params(key, d=5, hidden=4, classes=3):
  k1, k2, k3 = jax.random.split(key, 3)
  return {'w1': jax.random.normal(k1, (d, hidden)) * 0.5,
          'b1': jax.random.normal(k3, (hidden,)) * 0.1,
          'w2': jax.random.normal(k2, (hidden, classes)) * 0.5,
          'b2': jnp.zeros((classes,))}


def make_batch(key, n=4, d=5, classes=3, task=0):
  kx, ky = jax.random.split(key)
  return Batch(jax.random.normal(kx, (n, d)),
               jax.random.randint(ky, (n,), 0, classes),
               jnp.full((n,), task, jnp.int32))


LOSS = cross_entropy(apply_fn)
CONFIG = emcl_jax.EMCLConfig(alpha0=0.3, beta=0.1, lam=2.0, gamma=0.2,
                             eta=0.5, r=0.2, memory_size=0, h_min=0.05,
                             importance_grad='batch', h_norm='mean')


def reference_update(state, batch, key, config):
  """Algorithm 1, lines 4-10, written out with Python loops, memory off."""
  k_glances, _ = jax.random.split(key)
  theta0, h = state.params, state.h
  for k in jax.random.split(k_glances, config.glances):
    stream, _ = stream_lib.build(batch, None, 0, k)  # same shuffle
    ones = jnp.ones(batch.y.shape)
    g0 = jax.grad(LOSS)(theta0, batch, ones)
    h = jax.tree.map(lambda a, g, p: config.eta * a + (1 - config.eta)
                     * abs(g * p), h, g0, theta0)
    mean_h = (sum(float(jnp.sum(v)) for v in jax.tree.leaves(h))
              / sum(v.size for v in jax.tree.leaves(h)))
    hn = jax.tree.map(lambda a: jnp.maximum(a / mean_h, config.h_min), h)
    theta = theta0
    for i in range(stream.y.shape[0]):
      one = Batch(stream.x[i:i + 1], stream.y[i:i + 1], stream.t[i:i + 1])
      g = jax.grad(LOSS)(theta, one, jnp.ones(1))
      theta_hat = jax.tree.map(lambda p, gg: p - config.beta * gg, theta, g)
      c = config.gamma * config.lam
      theta = jax.tree.map(lambda v, p0, hh: (v + c * hh * p0) / (c * hh + 1),
                           theta_hat, theta0, hn)
    meta_g = jax.tree.map(lambda p0, pk, hh: config.lam * hh * (p0 - pk),
                          theta0, theta, hn)
    theta0 = jax.tree.map(
        lambda p, mg, hh: p - config.alpha0 * config.r / (hh + 1e-8) * mg,
        theta0, meta_g, hn)
  return theta0, h


class EMCLUpdateTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    self.params = make_params(jax.random.PRNGKey(0))
    self.batch = make_batch(jax.random.PRNGKey(1))

  @parameterized.parameters(1, 3)
  def test_matches_hand_written_algorithm(self, glances):
    config = CONFIG._replace(glances=glances)
    state = emcl_jax.init(self.params, self.batch, config)
    key = jax.random.PRNGKey(7)
    # Two meta-updates, so h's moving average is exercised.
    ref_state = state
    for _ in range(2):
      theta0, h = reference_update(ref_state, self.batch, key, config)
      ref_state = ref_state._replace(params=theta0, h=h)
      state, metrics = emcl_jax.update(state, self.batch, key, loss_fn=LOSS,
                                       config=config)
    chex.assert_trees_all_close(state.params, ref_state.params, atol=1e-5)
    chex.assert_trees_all_close(state.h, ref_state.h, atol=1e-6)
    self.assertEqual(int(state.step), 2 * glances)
    self.assertTrue(np.isfinite(metrics['loss']))

  @chex.variants(with_jit=True, without_jit=True)
  def test_jit_and_no_jit_agree_with_memory(self):
    config = CONFIG._replace(memory_size=6, replay_size=3, glances=2,
                             importance_grad='first_inner')
    update = self.variant(functools.partial(emcl_jax.update, loss_fn=LOSS,
                                            config=config))
    state = emcl_jax.init(self.params, self.batch, config)
    for i in range(3):
      state, metrics = update(state, make_batch(jax.random.PRNGKey(10 + i)),
                              jax.random.PRNGKey(i))
    # Compare against a fixed no-jit run.
    ref = emcl_jax.init(self.params, self.batch, config)
    for i in range(3):
      ref, _ = emcl_jax.update(ref, make_batch(jax.random.PRNGKey(10 + i)),
                               jax.random.PRNGKey(i), loss_fn=LOSS,
                               config=config)
    chex.assert_trees_all_close(state.params, ref.params, atol=1e-6)
    self.assertEqual(int(state.memory.seen), 12)
    chex.assert_shape(state.memory.x, (6, 5))
    chex.assert_trees_all_equal_shapes_and_dtypes(
        state.h, jax.tree.map(lambda p: p.astype(jnp.float32), self.params))
    self.assertTrue(np.isfinite(float(metrics['meta_grad_norm'])))

  def test_no_retracing(self):
    config = CONFIG._replace(memory_size=8, replay_size=2)
    traced = []

    @jax.jit
    def step(state, batch, key):
      traced.append(1)
      return emcl_jax.update(state, batch, key, loss_fn=LOSS, config=config)

    state = emcl_jax.init(self.params, self.batch, config)
    for i in range(4):
      state, _ = step(state, make_batch(jax.random.PRNGKey(i), task=i),
                      jax.random.PRNGKey(i))
    self.assertLen(traced, 1)

  @parameterized.parameters('first_inner', 'batch', 'meta')
  def test_learning_on_one_task(self, importance_grad):
    # A few meta-updates on a fixed batch lower its loss.
    config = CONFIG._replace(importance_grad=importance_grad, memory_size=8,
                             replay_size=4, r=1.0)
    state = emcl_jax.init(self.params, self.batch, config)
    ones = jnp.ones(4)
    before = LOSS(state.params, self.batch, ones)
    step = jax.jit(functools.partial(emcl_jax.update, loss_fn=LOSS,
                                     config=config))
    for i in range(20):
      state, _ = step(state, self.batch, jax.random.PRNGKey(i))
    self.assertLess(float(LOSS(state.params, self.batch, ones)),
                    0.5 * float(before))

  def test_gd_inner_rule_runs_and_differs(self):
    state = emcl_jax.init(self.params, self.batch, CONFIG)
    pgd, _ = emcl_jax.update(state, self.batch, jax.random.PRNGKey(0),
                             loss_fn=LOSS, config=CONFIG)
    gd, _ = emcl_jax.update(state, self.batch, jax.random.PRNGKey(0),
                            loss_fn=LOSS, config=CONFIG._replace(inner='gd'))
    diff = optax.tree.norm(jax.tree.map(jnp.subtract, pgd.params, gd.params))
    self.assertGreater(float(diff), 1e-6)

  def test_lr_modulation_inner_rule_runs_and_differs(self):
    state = emcl_jax.init(self.params, self.batch, CONFIG)
    key = jax.random.PRNGKey(0)
    pgd, _ = emcl_jax.update(state, self.batch, key, loss_fn=LOSS,
                             config=CONFIG)
    mod, _ = emcl_jax.update(state, self.batch, key, loss_fn=LOSS,
                             config=CONFIG._replace(inner='lr_modulation'))
    diff = optax.tree.norm(jax.tree.map(jnp.subtract, pgd.params, mod.params))
    self.assertGreater(float(diff), 1e-6)

  def test_si_importance_uses_the_last_meta_update(self):
    # EMCL-SI: h starts at 0 and delta at 0, so the first step's Omega is 0;
    # the second step's Omega is |g0 * (theta0^1 - theta0^0)| exactly.
    config = CONFIG._replace(importance='si', eta=0.5)
    state = emcl_jax.init(self.params, self.batch, config)
    self.assertIsNone(emcl_jax.init(self.params, self.batch, CONFIG).delta)
    step = jax.jit(functools.partial(emcl_jax.update, loss_fn=LOSS,
                                     config=config))
    s1, _ = step(state, self.batch, jax.random.PRNGKey(0))
    chex.assert_trees_all_close(s1.h, jax.tree.map(jnp.zeros_like, s1.h))
    chex.assert_trees_all_close(
        s1.delta, jax.tree.map(jnp.subtract, s1.params, state.params),
        atol=1e-6)
    s2, _ = step(s1, self.batch, jax.random.PRNGKey(1))
    g0 = jax.grad(LOSS)(s1.params, self.batch, jnp.ones(4))
    expected = jax.tree.map(lambda g, d: 0.5 * jnp.abs(g * d), g0, s1.delta)
    chex.assert_trees_all_close(s2.h, expected, atol=1e-7)

  def test_config_validation(self):
    for bad, msg in ((dict(beta=0.0), 'beta must be > 0'),
                     (dict(alpha0=-1.0), 'alpha0 must be > 0'),
                     (dict(eta=1.0), 'eta must be in'),
                     (dict(meta_lr='exp'), 'meta_lr must be one of'),
                     (dict(inner='adam'), 'inner must be one of'),
                     (dict(importance='mas'), 'importance must be one of'),
                     (dict(memory_size=5, replay_size=10), 'exceeds'),
                     (dict(glances=0), 'glances must be >= 1')):
      with self.assertRaisesRegex(ValueError, msg):
        CONFIG._replace(**bad).validate()


class FinetuneTest(chex.TestCase):

  def test_is_per_sample_sgd_over_the_stream(self):
    params = make_params(jax.random.PRNGKey(0))
    batch = make_batch(jax.random.PRNGKey(1))
    config = finetune.FinetuneConfig(lr=0.1, memory_size=0)
    state = finetune.init(params, batch, config)
    key = jax.random.PRNGKey(3)
    new, _ = jax.jit(functools.partial(finetune.update, loss_fn=LOSS,
                                       config=config))(state, batch, key)
    k_glances, _ = jax.random.split(key)
    stream, _ = stream_lib.build(batch, None, 0,
                                 jax.random.split(k_glances, 1)[0])
    theta = params
    for i in range(4):
      one = Batch(stream.x[i:i + 1], stream.y[i:i + 1], stream.t[i:i + 1])
      g = jax.grad(LOSS)(theta, one, jnp.ones(1))
      theta = jax.tree.map(lambda p, gg: p - 0.1 * gg, theta, g)
    chex.assert_trees_all_close(new.params, theta, atol=1e-6)


if __name__ == '__main__':
  absltest.main()
