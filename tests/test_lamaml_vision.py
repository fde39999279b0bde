"""La-MAML's vision algorithm (montrealrobotics/La-MAML,
`model/lamaml_cifar.py`): one meta-update of La-MAML, C-MAML and Sync,
second and first order, against a pure-NumPy reference written from the
official code.

The official vision meta-update, per glance (`observe`, l.91-153): the
shuffled batch is cut into `cifar_batches` contiguous chunks; each chunk
takes one inner step theta <- theta - alpha * clamp(g) with the raw alpha
(l.85-86) and g, the gradient of the chunk's mean cross-entropy on the
current task's logits, clamped elementwise to +-grad_clip_norm (l.82-83);
after each step the meta-loss on replay + batch (each row on its own task's
logits, mean over rows) is taken; their mean is differentiated w.r.t.
theta0 and alpha (through the inner gradients with `--second_order`; as
constants without). Both gradients are clipped to the global norm
grad_clip_norm (torch's `min(1, c / (norm + 1e-6))`), alpha takes an SGD
step of opt_lr (learn_lr), then theta0 one of relu(new alpha) or, with
sync_update, of opt_wt (l.134-149).

The reference below does the same in float64 NumPy: hand-written backprop
for the inner gradients, central finite differences for the meta-gradients
(first order: the same with the unperturbed trajectory's inner gradients
frozen). It shares no code with `emcl_jax`.
"""

import functools

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np

from emcl_jax import losses
from emcl_jax.base import Batch
from emcl_jax.methods import lamaml
from emcl_jax.training import grid

NAMES = ('w1', 'b1', 'w2', 'b2')
CLASSES = 2  # per task; 2 tasks, 4 logits
TASK = 1  # the current task
CLAMP = 0.3  # grad_clip_norm: the inner clamp and the global-norm clips
OPT_LR, OPT_WT = 0.25, 0.1
CHUNK = 2  # samples per inner step: 4 incoming samples, inner_batches=2
NEGATIVE = ('w1', (1, 4))  # the alpha element set below 0
VARIANTS = {  # name: (learn_lr, sync_update), methods.RECORDS' switches
    'lamaml': (True, False), 'cmaml': (False, True), 'sync': (True, True)}
# Central differences (h = 1e-6, float64) agree with emcl_jax to about
# 3e-11 on the new alpha and weights here.
LOSS_RTOL = 1e-10
UPDATE_ATOL = 1e-9


def problem():
  """theta0, alpha, the incoming batch (x, y, t) and the meta batch (3
  replay rows of tasks 0, 1, 1, then the batch), all float64 NumPy."""
  rng = np.random.default_rng(7)
  theta = {'w1': rng.normal(size=(4, 5)), 'b1': 0.1 * rng.normal(size=5),
           'w2': rng.normal(size=(5, 4)), 'b2': 0.1 * rng.normal(size=4)}
  alpha = {k: rng.uniform(0.05, 0.3, v.shape) for k, v in theta.items()}
  alpha[NEGATIVE[0]][NEGATIVE[1]] = -0.05
  x = rng.normal(size=(4, 4))
  y = TASK * CLASSES + rng.integers(0, CLASSES, 4)
  t = np.full(4, TASK)
  t_replay = np.array([0, 1, 1])
  x_replay = rng.normal(size=(3, 4))
  y_replay = t_replay * CLASSES + rng.integers(0, CLASSES, 3)
  meta = (np.concatenate([x_replay, x]), np.concatenate([y_replay, y]),
          np.concatenate([t_replay, t]))
  return theta, alpha, (x, y, t), meta


# ---------------------------------------------------------------- reference


def forward(theta, x):
  """Hidden activations and logits of tanh(x W1 + b1) W2 + b2."""
  h = np.tanh(x @ theta['w1'] + theta['b1'])
  return h, h @ theta['w2'] + theta['b2']


def task_ce(logits, y, t):
  """Per-row cross-entropy on the row's own task's logits (La-MAML's
  `take_multitask_loss` / `take_loss`)."""
  lo = t * CLASSES
  z = logits[np.arange(len(y))[:, None], lo[:, None] + np.arange(CLASSES)]
  z = z - z.max(axis=1, keepdims=True)
  logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
  return -logp[np.arange(len(y)), y - lo]


def chunk_grad(theta, x, y, t):
  """Backprop of the chunk's mean cross-entropy (`inner_update`'s loss)."""
  h, logits = forward(theta, x)
  lo = t * CLASSES
  rows = np.arange(len(y))[:, None]
  cols = lo[:, None] + np.arange(CLASSES)
  z = logits[rows, cols]
  p = np.exp(z - z.max(axis=1, keepdims=True))
  p /= p.sum(axis=1, keepdims=True)
  p[np.arange(len(y)), y - lo] -= 1.0
  d_logits = np.zeros_like(logits)
  d_logits[rows, cols] = p / len(y)
  d_pre = (d_logits @ theta['w2'].T) * (1.0 - h ** 2)
  return {'w1': x.T @ d_pre, 'b1': d_pre.sum(axis=0),
          'w2': h.T @ d_logits, 'b2': d_logits.sum(axis=0)}


def inner_grads(theta, alpha, batch, *, chunk=CHUNK, relu=False,
                clamp=CLAMP):
  """The (clamped) inner gradients g_1..g_k along the trajectory."""
  return meta_loss(theta, alpha, batch, None, chunk=chunk, relu=relu,
                   clamp=clamp)[1]


def meta_loss(theta0, alpha, batch, meta, *, frozen=None, chunk=CHUNK,
              relu=False, clamp=CLAMP):
  """The official vision meta-loss (l.106-134) and the inner gradients.

  Args:
    theta0, alpha: dicts of float64 arrays.
    batch: the incoming (x, y, t), in the inner steps' order.
    meta: the meta batch (x, y, t); None: no meta-losses (loss nan).
    frozen: the inner gradients to use instead of computing them.
    chunk: samples per inner step.
    relu: inner steps with relu(alpha) (the MNIST code) instead of alpha.
    clamp: the elementwise bound of the inner gradients (None: none).
  """
  x, y, t = batch
  theta, grads, values = dict(theta0), [], []
  rate = {k: np.maximum(a, 0.0) if relu else a for k, a in alpha.items()}
  for i in range(-(-len(y) // chunk)):  # the last chunk may be shorter
    rows = slice(i * chunk, (i + 1) * chunk)
    if frozen is not None:
      g = frozen[i]
    else:
      g = chunk_grad(theta, x[rows], y[rows], t[rows])
      if clamp is not None:
        g = {k: np.clip(v, -clamp, clamp) for k, v in g.items()}
    grads.append(g)
    theta = {k: theta[k] - rate[k] * g[k] for k in NAMES}
    if meta is not None:
      values.append(np.mean(task_ce(forward(theta, meta[0])[1], *meta[1:])))
  return (np.mean(values) if values else np.nan), grads


def flat(tree):
  return np.concatenate([tree[k].ravel() for k in NAMES])


def unflat(vector, like):
  out, start = {}, 0
  for k in NAMES:
    out[k] = vector[start:start + like[k].size].reshape(like[k].shape)
    start += like[k].size
  return out


def central_differences(f, theta, alpha, h=1e-6):
  """(df/dtheta, df/dalpha) by central differences in every coordinate."""
  grads = []
  for which in range(2):
    point = [flat(theta), flat(alpha)]
    grad = np.zeros_like(point[which])
    for j in range(grad.size):
      values = []
      for sign in (1.0, -1.0):
        moved = [p.copy() for p in point]
        moved[which][j] += sign * h
        values.append(f(unflat(moved[0], theta), unflat(moved[1], theta)))
      grad[j] = (values[0] - values[1]) / (2 * h)
    grads.append(unflat(grad, theta))
  return tuple(grads)


def meta_gradients(theta, alpha, batch, meta, *, second_order, **inner):
  """The meta-loss and its gradients w.r.t. (theta0, alpha)."""
  loss, frozen = meta_loss(theta, alpha, batch, meta, **inner)
  if second_order:
    frozen = None
  f = lambda th, al: meta_loss(th, al, batch, meta, frozen=frozen,
                               **inner)[0]
  return loss, central_differences(f, theta, alpha)


def clip(tree, max_norm):
  """torch.nn.utils.clip_grad_norm_ on a dict of arrays."""
  norm = np.sqrt(sum(np.sum(v ** 2) for v in tree.values()))
  scale = min(1.0, max_norm / (norm + 1e-6))
  return {k: v * scale for k, v in tree.items()}


def step(theta, alpha, g_theta, g_alpha, *, learn_lr, sync_update):
  """l.137-149: clip both, alpha by SGD (learn_lr), then theta0."""
  g_theta, g_alpha = clip(g_theta, CLAMP), clip(g_alpha, CLAMP)
  if learn_lr:
    alpha = {k: alpha[k] - OPT_LR * g_alpha[k] for k in NAMES}
  if sync_update:
    theta = {k: theta[k] - OPT_WT * g_theta[k] for k in NAMES}
  else:
    theta = {k: theta[k] - np.maximum(alpha[k], 0.0) * g_theta[k]
             for k in NAMES}
  return theta, alpha


def reference(variant, second_order, **inner):
  """(loss, (g_theta, g_alpha), new theta, new alpha) of one meta-update."""
  theta, alpha, batch, meta = problem()
  loss, (g_theta, g_alpha) = meta_gradients(
      theta, alpha, batch, meta, second_order=second_order, **inner)
  learn_lr, sync_update = VARIANTS[variant]
  new_theta, new_alpha = step(theta, alpha, g_theta, g_alpha,
                              learn_lr=learn_lr, sync_update=sync_update)
  return loss, (g_theta, g_alpha), new_theta, new_alpha


# -------------------------------------------------------------- emcl_jax


def apply_fn(params, x):
  return jnp.tanh(x @ params['w1'] + params['b1']) @ params['w2'] + params[
      'b2']


def jax_problem():
  """The reference problem as emcl_jax takes it (call inside enable_x64)."""
  theta, alpha, (x, y, t), (mx, my, mt) = problem()
  mask = np.repeat(np.eye(2, dtype=bool), CLASSES, axis=1)  # [T, C]
  loss_fn = losses.cross_entropy(apply_fn, mask)
  to_jax = lambda tree: {k: jnp.asarray(v, jnp.float64)
                         for k, v in tree.items()}
  batch = Batch(jnp.asarray(x), jnp.asarray(y), jnp.asarray(t))
  meta = Batch(jnp.asarray(mx), jnp.asarray(my), jnp.asarray(mt))
  return to_jax(theta), to_jax(alpha), batch, meta, loss_fn


def vision_config(variant, second_order, **changes):
  """`variant`'s config with the vision switches and the problem's rates."""
  learn_lr, sync_update = VARIANTS[variant]
  return lamaml.LaMAMLConfig(
      opt_lr=OPT_LR, opt_wt=OPT_WT, learn_lr=learn_lr,
      sync_update=sync_update, second_order=second_order,
      inner_batches=4 // CHUNK, inner_relu=False, inner_clamp=True,
      grad_clip_norm=CLAMP, **changes)


@functools.lru_cache(maxsize=None)
def jax_meta_updates(second_order):
  """emcl_jax's meta-update of the problem for every variant, one program:
  {variant: (loss, new theta, new alpha)} as float64 NumPy. First order
  takes grad_clip_norm as a traced scalar (as a grid of settings gives it,
  `training.grid`), second order as a Python float."""
  with jax.enable_x64(True):
    theta, alpha, batch, meta, loss_fn = jax_problem()
    meta_w = jnp.ones(meta.y.shape, jnp.float64)
    state = lamaml.LaMAMLState(theta, alpha, None, jnp.zeros((), jnp.int32))

    @jax.jit
    def run(clip_norm):
      out = {}
      for variant in VARIANTS:
        config = vision_config(variant, second_order)
        if not second_order:
          config = grid.with_values(config, {'grad_clip_norm': clip_norm})
        new, loss = lamaml.meta_update(state, batch, meta, meta_w,
                                       loss_fn=loss_fn, config=config)
        out[variant] = (loss, new.params, new.alpha)
      return out

    return jax.tree.map(np.asarray, run(jnp.asarray(CLAMP, jnp.float64)))


def max_diff(a, b):
  """The largest absolute difference of two trees of arrays."""
  return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


class ReferenceTest(absltest.TestCase):
  """The reference's own checks: its backprop, and that the problem
  exercises every part of the vision algorithm."""

  def test_backprop_matches_finite_differences(self):
    theta, _, (x, y, t), _ = problem()
    f = lambda th, _: np.mean(task_ce(forward(th, x[:2])[1], y[:2], t[:2]))
    fd, _ = central_differences(f, theta, theta)
    self.assertLess(max_diff(chunk_grad(theta, x[:2], y[:2], t[:2]), fd),
                    1e-9)

  def test_the_clamp_is_active_and_away_from_its_kink(self):
    theta, alpha, batch, _ = problem()
    raw = inner_grads(theta, alpha, batch, clamp=None)
    values = np.abs(np.concatenate([flat(g) for g in raw]))
    self.assertGreater(int(np.sum(values > CLAMP)), 0)
    self.assertGreater(int(np.sum(values < CLAMP)), values.size // 2)
    # Finite differences never cross the clamp's kink.
    self.assertGreater(float(np.min(np.abs(values - CLAMP))), 1e-3)

  def test_every_switch_changes_the_update(self):
    # Each part of the vision algorithm moves the new weights by > 1e-4, so
    # an implementation without it fails the comparisons below.
    _, _, theta2, _ = reference('lamaml', True)
    for name, other in (
        ('first order', reference('lamaml', False)),
        ('relu(alpha) inner steps', reference('lamaml', True, relu=True)),
        ('no clamp', reference('lamaml', True, clamp=None)),
        ('per-sample steps', reference('lamaml', True, chunk=1))):
      self.assertGreater(max_diff(theta2, other[2]), 1e-4, name)


class VisionMetaUpdateTest(absltest.TestCase):
  """emcl_jax's meta-update against the reference: the loss to 1e-10
  relative, the new alpha and weights to 1e-9 absolute."""

  def check(self, variant, second_order):
    want_loss, _, want_theta, want_alpha = reference(variant, second_order)
    loss, theta, alpha = jax_meta_updates(second_order)[variant]
    label = f'{variant}, {"second" if second_order else "first"} order'
    np.testing.assert_allclose(loss, want_loss, rtol=LOSS_RTOL,
                               err_msg=f'loss, {label}')
    for k in NAMES:
      np.testing.assert_allclose(alpha[k], want_alpha[k], atol=UPDATE_ATOL,
                                 err_msg=f'alpha[{k}], {label}')
      np.testing.assert_allclose(theta[k], want_theta[k], atol=UPDATE_ATOL,
                                 err_msg=f'theta[{k}], {label}')
    return alpha

  def test_lamaml_second_order(self):
    alpha = self.check('lamaml', True)
    # The negative rate's meta-gradient is not masked (raw alpha): it moves.
    name, index = NEGATIVE
    self.assertGreater(abs(alpha[name][index] - problem()[1][name][index]),
                       1e-4)

  def test_lamaml_first_order(self):
    self.check('lamaml', False)

  def test_cmaml_second_order(self):
    alpha = self.check('cmaml', True)
    np.testing.assert_array_equal(flat(alpha), flat(problem()[1]))

  def test_cmaml_first_order(self):
    self.check('cmaml', False)

  def test_sync_second_order(self):
    self.check('sync', True)

  def test_sync_first_order(self):
    self.check('sync', False)


class InnerChunksTest(absltest.TestCase):

  def test_contiguous_chunks(self):
    batch = Batch(jnp.arange(12.).reshape(6, 2), jnp.arange(6),
                  jnp.zeros(6, jnp.int32))
    chunks, weights = lamaml.inner_chunks(batch, 3)
    np.testing.assert_array_equal(chunks.y, [[0, 1], [2, 3], [4, 5]])
    self.assertEqual(chunks.x.shape, (3, 2, 2))
    self.assertIsNone(weights)
    # inner_batches = b is the per-sample scheme (None), chunks of one.
    chex.assert_trees_all_equal(lamaml.inner_chunks(batch, 6),
                                lamaml.inner_chunks(batch))
    self.assertEqual(lamaml.inner_chunks(batch)[0].y.shape, (6, 1))

  def test_short_and_empty_chunks_as_the_official_slices(self):
    # ceil(b / k) samples a chunk: b=6, k=4 gives 2, 2, 2 (the official
    # code's fourth chunk, x[6:8], is empty and its loss NaN: left out);
    # b=7, k=2 gives 4 and 3 (padded with a weight-0 row); k > b gives one
    # sample a chunk.
    batch = Batch(jnp.arange(14.).reshape(7, 2), jnp.arange(7),
                  jnp.zeros(7, jnp.int32))
    six = Batch(*(a[:6] for a in batch))
    chunks, weights = lamaml.inner_chunks(six, 4)
    np.testing.assert_array_equal(chunks.y, [[0, 1], [2, 3], [4, 5]])
    self.assertIsNone(weights)
    chunks, weights = lamaml.inner_chunks(batch, 2)
    np.testing.assert_array_equal(chunks.y, [[0, 1, 2, 3], [4, 5, 6, 0]])
    np.testing.assert_array_equal(weights, [[1, 1, 1, 1], [1, 1, 1, 0]])
    self.assertEqual(lamaml.inner_chunks(batch, 10)[0].y.shape, (7, 1))
    with self.assertRaisesRegex(ValueError, 'inner_batches must be >= 1'):
      lamaml.LaMAMLConfig(inner_batches=0).validate()

  def test_a_short_last_chunk_against_the_reference(self):
    # 3 incoming samples in chunks of 2: steps on {0, 1} and {2} (the mean
    # over the short chunk's one sample, not over its padding), first order.
    theta, alpha, (x, y, t), meta = problem()
    short = (x[:3], y[:3], t[:3])
    want_loss, want = meta_gradients(theta, alpha, short, meta,
                                     second_order=False)
    with jax.enable_x64(True):
      j_theta, j_alpha, batch, j_meta, loss_fn = jax_problem()
      loss, got = lamaml.first_order_meta_gradients(
          j_theta, j_alpha, Batch(*(a[:3] for a in batch)), j_meta,
          jnp.ones(j_meta.y.shape, jnp.float64), loss_fn=loss_fn,
          inner_batches=2, inner_relu=False, clamp=CLAMP)
    np.testing.assert_allclose(loss, want_loss, rtol=LOSS_RTOL)
    self.assertLess(max_diff(got, want), UPDATE_ATOL)

  def test_vision_update_runs_and_learns_alpha(self):
    # The whole update (shuffle, replay with padding rows, two glances)
    # with the vision switches (first order: the faster compile; the
    # meta-update is the same code in either order).
    params = {'w1': jnp.full((4, 5), 0.1), 'b1': jnp.zeros(5),
              'w2': jnp.full((5, 4), 0.1), 'b2': jnp.zeros(4)}
    rng = np.random.default_rng(0)
    batch = Batch(jnp.asarray(rng.normal(size=(10, 4)), jnp.float32),
                  jnp.asarray(2 + rng.integers(0, 2, 10)),
                  jnp.ones(10, jnp.int32))
    mask = np.repeat(np.eye(2, dtype=bool), CLASSES, axis=1)
    config = vision_config('lamaml', False, glances=2, memory_size=20,
                           replay_size=5)._replace(inner_batches=5)
    state = lamaml.init(params, batch, config)
    state, metrics = jax.jit(functools.partial(
        lamaml.update, loss_fn=losses.cross_entropy(apply_fn, mask),
        config=config))(state, batch, jax.random.PRNGKey(0))
    self.assertTrue(np.isfinite(float(metrics['loss'])))
    self.assertFalse(np.allclose(state.alpha['w1'], config.alpha_init))
    self.assertEqual(int(state.memory.seen), 10)


if __name__ == '__main__':
  absltest.main()
