"""Each equation of EMCL against hand-computed values on tiny pytrees."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from emcl_jax.equations import importance
from emcl_jax.equations import inner
from emcl_jax.equations import meta_grad
from emcl_jax.equations import transforms


def tree(a, b):
  return {'w': jnp.asarray(a, jnp.float32), 'b': jnp.asarray(b, jnp.float32)}


class InnerStepTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_prox_quadratic_hand_value(self):
    # Eq 18 with v=3, x0=1, c=2, gamma=0.5: (3 + 2)/(2 + 1) = 5/3.
    out = self.variant(inner.prox_quadratic)(3.0, 1.0, 2.0, 0.5)
    np.testing.assert_allclose(out, 5.0 / 3.0, rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_gradient_step_eq16(self):
    theta, grads = tree([1.0, -2.0], [0.5]), tree([2.0, 4.0], [-1.0])
    out = self.variant(lambda t, g: inner.gradient_step(t, g, 0.25))(theta,
                                                                    grads)
    chex.assert_trees_all_close(out, tree([0.5, -3.0], [0.75]))

  @chex.variants(with_jit=True, without_jit=True)
  def test_proximal_step_eq21(self):
    # theta = (theta_hat + g*l*h*theta0) / (g*l*h + 1) with g=0.5, l=2:
    # w0: h=1 -> (2 + 1*0)/(1+1) = 1 ; w1: h=3 -> (4 + 3*2)/(3+1) = 2.5
    # b: h=0 -> theta_hat unchanged.
    fn = lambda a, b, c: inner.proximal_step(a, b, c, lam=2.0, gamma=0.5)
    out = self.variant(fn)(tree([2.0, 4.0], [7.0]), tree([0.0, 2.0], [1.0]),
                           tree([1.0, 3.0], [0.0]))
    chex.assert_trees_all_close(out, tree([1.0, 2.5], [7.0]))

  @chex.variants(with_jit=True, without_jit=True)
  def test_pgd_step_is_eq16_then_eq21(self):
    theta, theta0 = tree([1.0, 1.0], [0.0]), tree([0.0, 0.0], [0.0])
    h, grads = tree([1.0, 0.0], [2.0]), tree([2.0, 2.0], [1.0])
    fn = lambda *a: inner.pgd_step(*a, beta=0.5, lam=1.0, gamma=1.0)
    out = self.variant(fn)(theta, theta0, h, grads)
    # theta_hat = [0, 0], [-0.5]; prox: [0/2, 0/1], [-0.5/3]
    chex.assert_trees_all_close(out, tree([0.0, 0.0], [-0.5 / 3.0]))

  @chex.variants(with_jit=True, without_jit=True)
  def test_prepared_pgd_step_equals_pgd_step(self):
    theta, theta0 = tree([1.0, -2.0], [0.5]), tree([0.3, 0.1], [-1.0])
    h, grads = tree([0.7, 0.0], [2.0]), tree([2.0, -1.0], [0.25])

    def prepared(theta, theta0, h, grads):
      coef = inner.pgd_coefficients(theta0, h, lam=3.0, gamma=0.2)
      return inner.pgd_step_prepared(theta, grads, coef, beta=0.1)

    out = self.variant(prepared)(theta, theta0, h, grads)
    ref = inner.pgd_step(theta, theta0, h, grads, beta=0.1, lam=3.0, gamma=0.2)
    chex.assert_trees_all_close(out, ref, rtol=1e-6)

  @chex.variants(with_jit=True, without_jit=True)
  def test_regularised_gd_step(self):
    fn = lambda *a: inner.regularised_gd_step(*a, beta=0.5, lam=2.0)
    out = self.variant(fn)(tree([1.0, 3.0], [0.0]), tree([0.0, 1.0], [0.0]),
                           tree([1.0, 0.5], [1.0]), tree([1.0, 0.0], [2.0]))
    # w0: 1 - .5*(1 + 2*1*1) = -0.5 ; w1: 3 - .5*(0 + 2*.5*2) = 2 ; b: -1
    chex.assert_trees_all_close(out, tree([-0.5, 2.0], [-1.0]))

  @chex.variants(with_jit=True, without_jit=True)
  def test_lr_modulation_ablation(self):
    # rates = beta / (1 + gamma lam h) = 0.5 / (1 + 0.5*2*h): h=1 -> 0.25,
    # h=3 -> 0.125, h=0 -> 0.5; then theta - rates * g.
    def fn(theta, h, grads):
      rates = inner.modulated_rates(h, beta=0.5, lam=2.0, gamma=0.5)
      return rates, inner.modulated_step(theta, grads, rates)

    rates, out = self.variant(fn)(tree([1.0, 3.0], [0.0]),
                                  tree([1.0, 3.0], [0.0]),
                                  tree([2.0, -4.0], [1.0]))
    chex.assert_trees_all_close(rates, tree([0.25, 0.125], [0.5]))
    chex.assert_trees_all_close(out, tree([0.5, 3.5], [-0.5]))

  @parameterized.parameters((0.3, 1.0, 0.7), (1.0, 5.0, -2.0), (0.05, 0.2, 3.0))
  def test_lemma1_prox_is_argmin_of_eq14(self, gamma, c, v):
    # Eq 14 for f(x) = c (x - x0)^2, minimised by plain gradient descent.
    x0 = 0.4
    objective = lambda x: c * (x - x0)**2 + (x - v)**2 / (2 * gamma)
    grad = jax.jit(jax.grad(objective))
    x = jnp.float32(0.0)
    lr = 1.0 / (2 * c + 1 / gamma)  # 1/curvature: converges at once, then
    for _ in range(50):             # further steps only polish it.
      x = x - lr * grad(x)
    grid = np.linspace(-5, 5, 200001)
    grid_min = grid[np.argmin(c * (grid - x0)**2 + (grid - v)**2 / (2 * gamma))]
    closed = inner.prox_quadratic(v, x0, c, gamma)
    np.testing.assert_allclose(closed, x, atol=1e-5)
    np.testing.assert_allclose(closed, grid_min, atol=1e-4)


class ImportanceTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_taylor_importance_eq13(self):
    out = self.variant(importance.taylor_importance)(tree([2.0, -3.0], [0.5]),
                                                     tree([-1.0, 2.0], [4.0]))
    chex.assert_trees_all_close(out, tree([2.0, 6.0], [2.0]))

  @chex.variants(with_jit=True, without_jit=True)
  def test_moving_average_eq7(self):
    fn = lambda h, o: importance.update_importance(h, o, 0.75)
    out = self.variant(fn)(tree([4.0, 0.0], [1.0]), tree([0.0, 8.0], [1.0]))
    chex.assert_trees_all_close(out, tree([3.0, 2.0], [1.0]))

  def test_taylor_matches_zeroing_out_for_linear_loss(self):
    # Eq 11 vs Eq 13: for a loss linear in theta the Taylor estimate is exact.
    a = jnp.array([1.5, -2.0, 0.3])
    loss = lambda th: jnp.dot(a, th)
    theta = jnp.array([0.2, 0.7, -1.1])
    exact = jnp.abs(jnp.stack([loss(theta) - loss(theta.at[m].set(0.0))
                               for m in range(3)]))
    approx = importance.taylor_importance(jax.grad(loss)(theta), theta)
    np.testing.assert_allclose(approx, exact, rtol=1e-6)

  def test_si_importance(self):
    out = importance.si_importance(tree([2.0, -1.0], [3.0]),
                                   tree([0.5, 2.0], [-1.0]))
    chex.assert_trees_all_close(out, tree([1.0, 2.0], [3.0]))

  @parameterized.parameters(
      ('none', [1.0, 3.0], [4.0]),
      ('mean', [0.375, 1.125], [1.5]),  # mean of (1, 3, 4) = 8/3
      ('max', [0.25, 0.75], [1.0]),
      ('layer_mean', [0.5, 1.5], [1.0]))
  def test_normalise(self, mode, w, b):
    out = importance.normalise(tree([1.0, 3.0], [4.0]), mode)
    chex.assert_trees_all_close(out, tree(w, b), rtol=1e-6)

  def test_normalise_rejects_unknown_mode(self):
    with self.assertRaisesRegex(ValueError, 'unknown importance'):
      importance.normalise(tree([1.0], [1.0]), 'median')

  def test_floor(self):
    out = importance.floor(tree([0.0, 3.0], [0.001]), 0.01)
    chex.assert_trees_all_close(out, tree([0.01, 3.0], [0.01]))


class MetaGradientTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_eq10_hand_value(self):
    fn = lambda *a: meta_grad.meta_gradient(*a, lam=2.0)
    out = self.variant(fn)(tree([1.0, 0.0], [2.0]), tree([0.5, 1.0], [2.0]),
                           tree([1.0, 3.0], [5.0]))
    chex.assert_trees_all_close(out, tree([1.0, -6.0], [0.0]))

  def _quadratic_problem(self):
    # Empirical risk L(theta) = 1/2 (theta - a)^T A (theta - a), A SPD.
    rng = np.random.default_rng(0)
    m = rng.normal(size=(4, 4))
    a_mat = jnp.asarray(m @ m.T + 0.5 * np.eye(4), jnp.float32)
    a_vec = jnp.asarray(rng.normal(size=4), jnp.float32)
    h = jnp.asarray([0.5, 1.0, 2.0, 0.1], jnp.float32)
    lam = 3.0
    risk = lambda th: 0.5 * (th - a_vec) @ a_mat @ (th - a_vec)

    def theta_k(theta0):
      # Minimiser of Eq 6: (A + lam H^2) theta = A a + lam H^2 theta0.
      return jnp.linalg.solve(a_mat + lam * jnp.diag(h),
                              a_mat @ a_vec + lam * h * theta0)

    theta0 = jnp.asarray(rng.normal(size=4), jnp.float32)
    return risk, theta_k, theta0, h, lam, a_mat

  def test_eq10_equals_autodiff_through_the_inner_minimiser(self):
    risk, theta_k, theta0, h, lam, _ = self._quadratic_problem()
    # Eq 9 holds at theta_k:
    tk = theta_k(theta0)
    np.testing.assert_allclose(jax.grad(risk)(tk) + lam * h * (tk - theta0),
                               0.0, atol=1e-4)
    # The meta-loss of Eq 10's derivation: the inner objective of Eq 6
    # evaluated at its minimiser theta_k(theta0), differentiated through it.
    meta_loss = lambda th0: (risk(theta_k(th0))
                             + 0.5 * lam * jnp.sum(h * (theta_k(th0) - th0)**2))
    autodiff = jax.grad(meta_loss)(theta0)
    closed = meta_grad.meta_gradient(theta0, tk, h, lam)
    np.testing.assert_allclose(closed, autodiff, rtol=1e-4, atol=1e-5)

  def test_eq10_against_plain_risk_differs_by_the_jacobian(self):
    # d/dtheta0 of L(theta_k(theta0)) alone carries the Jacobian
    # lam H (A + lam H)^-1 that Eq 10's derivation cancels (see
    # docs/algorithm.md): check that exact relation, so the docs are right.
    risk, theta_k, theta0, h, lam, a_mat = self._quadratic_problem()
    autodiff = jax.grad(lambda th0: risk(theta_k(th0)))(theta0)
    jac = jnp.linalg.solve(a_mat + lam * jnp.diag(h), lam * jnp.diag(h))
    closed = meta_grad.meta_gradient(theta0, theta_k(theta0), h, lam)
    np.testing.assert_allclose(autodiff, jac.T @ closed, rtol=1e-4, atol=1e-5)


class MetaLearningRateTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_inverse_eq8(self):
    tx = transforms.scale_by_importance(r=2.0, mode='inverse', eps=0.0)
    g, h = tree([1.0, 1.0], [3.0]), tree([4.0, 0.5], [1.0])
    state = tx.init(g)
    out, _ = self.variant(lambda g, s, h: tx.update(g, s, importance=h))(
        g, state, h)
    chex.assert_trees_all_close(out, tree([0.5, 4.0], [6.0]))

  def test_literal_eq8_compounds(self):
    tx = transforms.scale_by_importance(r=1.0, mode='literal', eps=0.0)
    g, h = tree([1.0, 1.0], [1.0]), tree([2.0, 0.5], [1.0])
    state = tx.init(g)
    out1, state = tx.update(g, state, importance=h)
    out2, state = tx.update(g, state, importance=h)
    # alpha_1 = 1/h, alpha_2 = 1/h^2
    chex.assert_trees_all_close(out1, tree([0.5, 2.0], [1.0]))
    chex.assert_trees_all_close(out2, tree([0.25, 4.0], [1.0]))
    chex.assert_trees_all_close(state.alpha, tree([0.25, 4.0], [1.0]))

  def test_constant_mode_is_identity(self):
    tx = transforms.scale_by_importance(mode='constant')
    g = tree([1.0, -2.0], [3.0])
    out, _ = tx.update(g, tx.init(g), importance=tree([9.0, 9.0], [9.0]))
    chex.assert_trees_all_close(out, g)

  def test_chain_with_optax(self):
    # meta_learning_rate == chain(scale_by_importance, scale(-alpha0)) and
    # composes further, e.g. with gradient clipping.
    tx = optax.chain(optax.clip(1.0),
                     transforms.meta_learning_rate(0.5, r=1.0, eps=0.0))
    g, h = tree([4.0, -0.5], [0.2]), tree([2.0, 1.0], [0.5])
    out, _ = jax.jit(lambda g, s, h: tx.update(g, s, importance=h))(
        g, tx.init(g), h)
    # clip -> [1, -0.5], [0.2]; / h -> [0.5, -0.5], [0.4]; * -0.5
    chex.assert_trees_all_close(out, tree([-0.25, 0.25], [-0.2]))

  def test_bounded_eq8_three_updates_by_hand(self):
    # alpha/alpha0 starts at 1; each update multiplies by r/h, then clips to
    # [lo, hi] = [0.1, 0.6] / 0.3 = [1/3, 2]. r = 1, h = (2, 0.5) | (1.25):
    #   coord 1: 1 * 0.5 = 0.5, 0.25 -> 1/3, 1/3 * 0.5 -> 1/3
    #   coord 2: 2, 4 -> 2, 2
    #   coord 3: 0.8, 0.64, 0.512
    tx = transforms.meta_learning_rate(0.3, r=1.0, mode='bounded', eps=0.0,
                                       alpha_min=0.1, alpha_max=0.6)
    g, h = tree([1.0, 1.0], [1.0]), tree([2.0, 0.5], [1.25])
    state = tx.init(g)
    update = jax.jit(lambda g, s, h: tx.update(g, s, importance=h))
    for _ in range(3):
      out, state = update(g, state, h)
    chex.assert_trees_all_close(
        out, tree([-0.3 / 3, -0.6], [-0.3 * 0.512]), atol=1e-6)

  def test_bounded_stays_within_bounds(self):
    tx = transforms.meta_learning_rate(0.3, r=1.0, mode='bounded',
                                       alpha_min=0.05, alpha_max=0.9)
    g = tree([1.0, 1.0], [1.0])
    state = tx.init(g)
    rng = np.random.default_rng(0)
    for _ in range(50):
      h = jax.tree.map(lambda x: jnp.asarray(
          rng.lognormal(0, 2, x.shape), jnp.float32), g)
      out, state = tx.update(g, state, importance=h)
      rates = -np.concatenate([np.ravel(v) for v in jax.tree.leaves(out)])
      self.assertTrue(np.all(rates >= 0.05 - 1e-7), rates)
      self.assertTrue(np.all(rates <= 0.9 + 1e-7), rates)

  def test_task_eq8_steps_at_task_boundaries_only(self):
    # alpha = alpha0 during task 0; at the first update of task 1 it becomes
    # clip(alpha0 r / h); it stays so within task 1; task 2 compounds.
    tx = transforms.meta_learning_rate(0.5, r=1.0, mode='task', eps=0.0,
                                       alpha_max=1.5)
    g = tree([1.0, 1.0], [1.0])
    h = tree([2.0, 0.25], [1.0])
    state = tx.init(g)
    rates = []
    for task in (0, 0, 1, 1, 2):
      out, state = tx.update(g, state, importance=h, task=task)
      rates.append(jax.tree.map(jnp.negative, out))
    for i, expected in enumerate((([0.5, 0.5], [0.5]),
                                  ([0.5, 0.5], [0.5]),
                                  ([0.25, 1.5], [0.5]),  # 2.0 clipped
                                  ([0.25, 1.5], [0.5]),
                                  ([0.125, 1.5], [0.5]))):
      chex.assert_trees_all_close(rates[i], tree(*expected), atol=1e-7)

  def test_lagged_eq8_uses_the_previous_importance(self):
    # alpha^j = r / h^{j-1}; the first update uses its own h; calls with
    # advance=False (later glances) keep the pair.
    tx = transforms.scale_by_importance(r=2.0, mode='lagged', eps=0.0)
    g = tree([1.0, 1.0], [1.0])
    h1, h2, h3 = (tree([1.0, 2.0], [4.0]), tree([4.0, 1.0], [2.0]),
                  tree([8.0, 8.0], [8.0]))
    state = tx.init(g)
    out1, state = tx.update(g, state, importance=h1)
    out2, state = tx.update(g, state, importance=h2)
    out2b, state = tx.update(g, state, importance=h2, advance=False)
    out3, state = tx.update(g, state, importance=h3)
    chex.assert_trees_all_close(out1, tree([2.0, 1.0], [0.5]))
    chex.assert_trees_all_close(out2, tree([2.0, 1.0], [0.5]))  # from h1
    chex.assert_trees_all_close(out2b, tree([2.0, 1.0], [0.5]))
    chex.assert_trees_all_close(out3, tree([0.5, 2.0], [1.0]))  # from h2

  def test_meta_clip_clips_the_global_norm_first(self):
    tx = transforms.meta_learning_rate(1.0, r=1.0, mode='constant',
                                       clip_norm=2.5)
    g = tree([3.0, 0.0], [4.0])  # norm 5 -> scaled by 2.5 / (5 + 1e-6)
    out, _ = tx.update(g, tx.init(g), importance=g)
    scale = 2.5 / (5.0 + 1e-6)  # torch.nn.utils.clip_grad_norm_'s factor
    # Within one float32 step of 1.5 (optax's factor 2.5 / 5 is 2.5 away).
    chex.assert_trees_all_close(out, tree([-3.0 * scale, 0.0], [-4.0 * scale]),
                                rtol=0, atol=1.5e-7)

  def test_validation(self):
    # The mode picks the code; the numbers' ranges are EMCLConfig.validate's
    # (tests/test_emcl.py), as the numbers may be traced here.
    with self.assertRaisesRegex(ValueError, 'unknown meta learning-rate'):
      transforms.scale_by_importance(mode='exp')


if __name__ == '__main__':
  absltest.main()
