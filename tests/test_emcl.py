"""emcl_jax.update: hand-written reference loop, jit/no-jit, no retracing."""

import functools
from typing import NamedTuple

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import emcl_jax
import fixtures
from emcl_jax import configs
from emcl_jax.methods import memory as memory_lib
from emcl_jax.methods import stream as stream_lib
from emcl_jax.base import Batch
from emcl_jax.losses import cross_entropy
from emcl_jax.methods import finetune


LOSS = cross_entropy(fixtures.mlp_apply)
CONFIG = emcl_jax.EMCLConfig(alpha0=0.3, beta=0.1, lam=2.0, gamma=0.2,
                             eta=0.5, r=0.2, memory_size=0, h_min=0.05,
                             importance_grad='batch', h_norm='mean')


def _mean(tree):
  leaves = jax.tree.leaves(tree)
  return sum(float(jnp.sum(v)) for v in leaves) / sum(v.size for v in leaves)


def _normalise(h, mode, h_min, flat):
  """Hand-written h_norm + floor (+ the importance='none' flattening)."""
  if mode == 'mean':
    scale = _mean(h)
  elif mode == 'max':
    scale = max(float(jnp.max(v)) for v in jax.tree.leaves(h))
  else:
    scale = 1.0
  hn = jax.tree.map(lambda a: jnp.maximum(a / (scale + 1e-12), h_min), h)
  if flat:
    m = _mean(hn)
    hn = jax.tree.map(lambda a: jnp.full_like(a, m), hn)
  return hn


class Ref(NamedTuple):
  """The reference's state: plain trees, no optax."""
  params: dict
  h: dict
  alpha: dict  # per-parameter rate multiplier (bounded / task)
  prev: dict   # lagged: h of the previous batch
  last: dict
  task: int
  count: int
  memory: object


def ref_init(params, config, example):
  ones = jax.tree.map(jnp.ones_like, params)
  memory = (memory_lib.init(config.memory_size, example)
            if config.memory_size else None)
  return Ref(params, jax.tree.map(jnp.zeros_like, params), ones, ones, ones,
             -1, 0, memory)


def reference_update(ref, batch, key, config):
  """Algorithm 1, lines 4-10, written out with Python loops: one batch,
  `config.glances` meta-updates, the inner rules, Eq 8's readings and the
  memory, La-MAML's glance order (docs/algorithm.md #7)."""
  k_first, k_rest, k_memory = jax.random.split(key, 3)
  keys = [k_first] + (list(jax.random.split(k_rest, config.glances - 1))
                      if config.glances > 1 else [])
  theta0, h, alpha = ref.params, ref.h, ref.alpha
  prev, last, task, count, memory = (ref.prev, ref.last, ref.task, ref.count,
                                     ref.memory)
  flat = config.importance == 'none'
  c = config.gamma * config.lam
  for g, k in enumerate(keys):
    stream, w = stream_lib.build(batch, memory, config.replay_size, k)
    if g == 0:  # Eq 13 and Eq 7, once per batch
      g0 = jax.grad(LOSS)(theta0, batch, jnp.ones(batch.y.shape))
      h = jax.tree.map(lambda a, gg, p: config.eta * a + (1 - config.eta)
                       * abs(gg * p), h, g0, theta0)
    hn = _normalise(h, config.h_norm, config.h_min, flat)
    hm = (hn if config.meta_h_norm == 'same' else
          _normalise(h, config.meta_h_norm, config.h_min, flat))
    theta = theta0
    for i in range(stream.y.shape[0]):
      if float(w[i]) == 0:  # padding row of a part-filled memory
        continue
      one = Batch(stream.x[i:i + 1], stream.y[i:i + 1], stream.t[i:i + 1])
      gr = jax.grad(LOSS)(theta, one, jnp.ones(1))
      if config.inner == 'pgd':
        theta_hat = jax.tree.map(lambda p, gg: p - config.beta * gg, theta, gr)
        theta = jax.tree.map(lambda v, p0, hh: (v + c * hh * p0)
                             / (c * hh + 1), theta_hat, theta0, hn)
      elif config.inner == 'gd':
        theta = jax.tree.map(
            lambda p, p0, hh, gg: p - config.beta * (
                gg + config.lam * hh * (p - p0)), theta, theta0, hn, gr)
      else:  # lr_modulation
        theta = jax.tree.map(lambda p, hh, gg: p - config.beta / (1 + c * hh)
                             * gg, theta, hn, gr)
    meta_g = jax.tree.map(lambda p0, pk, hh: config.lam * hh * (p0 - pk),
                          theta0, theta, hn)
    if config.meta_clip:
      norm = np.sqrt(sum(float(jnp.sum(v ** 2))
                         for v in jax.tree.leaves(meta_g)))
      scale = min(1.0, config.meta_clip / (norm + 1e-6))  # torch's
      meta_g = jax.tree.map(lambda v: v * scale, meta_g)
    lo = config.alpha_min / config.alpha0
    hi = config.alpha_max / config.alpha0
    factor = jax.tree.map(lambda hh: config.r / (hh + 1e-8), hm)
    if config.meta_lr == 'inverse':
      rate = factor
    elif config.meta_lr == 'bounded':
      alpha = jax.tree.map(lambda f, a: jnp.clip(f * a, lo, hi), factor,
                           alpha)
      rate = alpha
    elif config.meta_lr == 'task':
      t = int(batch.t[0])
      if count > 0 and t != task:
        alpha = jax.tree.map(lambda f, a: jnp.clip(f * a, lo, hi), factor,
                             alpha)
      task, rate = t, alpha
    elif config.meta_lr == 'lagged':
      if g == 0:
        prev, last = (hm if count == 0 else last), hm
      rate = jax.tree.map(lambda hh: config.r / (hh + 1e-8), prev)
    else:
      raise NotImplementedError(config.meta_lr)
    count += 1
    theta0 = jax.tree.map(lambda p, mg, a: p - config.alpha0 * a * mg,
                          theta0, meta_g, rate)
    if g == 0 and memory is not None:  # the batch joins the memory once
      memory = memory_lib.add(memory, batch, k_memory)
  return Ref(theta0, h, alpha, prev, last, task, count, memory)


class EMCLUpdateTest(chex.TestCase):

  def setUp(self):
    super().setUp()
    self.params = fixtures.make_params(0, hidden=4, biases=True)
    self.batch = fixtures.make_batch(jax.random.PRNGKey(1))

  def _check_against_reference(self, config, batches):
    state = emcl_jax.init(self.params, self.batch, config)
    ref = ref_init(self.params, config, self.batch)
    step = jax.jit(functools.partial(emcl_jax.update, loss_fn=LOSS,
                                     config=config))
    for i, batch in enumerate(batches):
      key = jax.random.PRNGKey(7 + i)
      ref = reference_update(ref, batch, key, config)
      state, metrics = step(state, batch, key)
    chex.assert_trees_all_close(state.params, ref.params, atol=2e-5)
    chex.assert_trees_all_close(state.h, ref.h, atol=1e-6)
    self.assertEqual(int(state.step), len(batches) * config.glances)
    self.assertTrue(np.isfinite(metrics['loss']))
    return state, ref

  @parameterized.parameters(1, 3)
  def test_matches_hand_written_algorithm(self, glances):
    # Two batches (so h's moving average is exercised), memory off.
    config = CONFIG._replace(glances=glances)
    self._check_against_reference(config, [self.batch, self.batch])

  def test_default_path_as_shipped(self):
    # EMCL's shipped MNIST Permutations config (its glances, h_norm, Eq 8
    # reading, clip), with a memory small enough that the second batch's
    # replay draw has padding rows (4 stored samples, 6 drawn of 8 slots).
    shipped = configs.get_config('mnist_permutations', 'emcl').method.params
    config = shipped._replace(memory_size=8, replay_size=6)
    batches = [fixtures.make_batch(jax.random.PRNGKey(20 + i), task=i // 2)
               for i in range(3)]
    state, ref = self._check_against_reference(config, batches)
    self.assertEqual(int(state.memory.seen), 12)  # each batch once
    chex.assert_trees_all_equal(state.memory, ref.memory)

  @parameterized.parameters('gd', 'lr_modulation')
  def test_ablation_inner_rules_match_hand_written_loops(self, inner):
    config = CONFIG._replace(inner=inner, glances=2, memory_size=6,
                             replay_size=3)
    self._check_against_reference(config, [self.batch, fixtures.make_batch(
        jax.random.PRNGKey(5))])

  @parameterized.parameters(
      dict(meta_lr='bounded', meta_h_norm='mean', r=1.0, alpha_min=0.03,
           alpha_max=0.6),
      dict(meta_lr='task', meta_h_norm='mean', r=1.0, alpha_max=0.6),
      dict(meta_lr='lagged', r=0.2),
      dict(meta_lr='inverse', meta_clip=0.05),
      dict(importance='none'))
  def test_eq8_readings_and_controls_match_hand_written_loops(self, **kw):
    config = CONFIG._replace(glances=2, **kw)
    batches = [fixtures.make_batch(jax.random.PRNGKey(30 + i), task=i // 2)
               for i in range(4)]
    self._check_against_reference(config, batches)

  def test_glances_advance_eq7_once_and_fill_memory_once(self):
    config = CONFIG._replace(glances=4, eta=0.5, memory_size=20,
                             replay_size=2)
    state = emcl_jax.init(self.params, self.batch, config)
    new, _ = emcl_jax.update(state, self.batch, jax.random.PRNGKey(0),
                             loss_fn=LOSS, config=config)
    g0 = jax.grad(LOSS)(self.params, self.batch, jnp.ones(4))
    # h = eta * 0 + (1 - eta) |g0 theta0| at the batch's theta0: one EMA
    # step, not four (eta^4 would leave (1 - 0.5^4) of it).
    expected = jax.tree.map(lambda g, p: 0.5 * jnp.abs(g * p), g0,
                            self.params)
    chex.assert_trees_all_close(new.h, expected, atol=1e-7)
    self.assertEqual(int(new.memory.seen), 4)
    self.assertEqual(int(new.step), 4)

  def test_no_retracing(self):
    config = CONFIG._replace(memory_size=8, replay_size=2)
    traced = []

    @jax.jit
    def step(state, batch, key):
      traced.append(1)
      return emcl_jax.update(state, batch, key, loss_fn=LOSS, config=config)

    state = emcl_jax.init(self.params, self.batch, config)
    for i in range(4):
      batch = fixtures.make_batch(jax.random.PRNGKey(i), task=i)
      state, _ = step(state, batch, jax.random.PRNGKey(i))
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
                     (dict(r=0.0), 'r must be > 0'),
                     (dict(alpha_min=0.5, alpha_max=0.5),
                      'need 0 <= alpha_min < alpha_max'),
                     (dict(meta_clip=-1.0), 'meta_clip must be >= 0'),
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
    params = fixtures.make_params(0, hidden=4, biases=True)
    batch = fixtures.make_batch(jax.random.PRNGKey(1))
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
