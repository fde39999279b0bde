"""The Eq 8 step acts: `meta_step_share` against its closed form, and no
shipped EMCL setting makes the meta step a copy of the inner loop's end point
(theta0 <- theta_k, alpha0 * r * lam = 1 under the `inverse` reading), and
no shipped GD ablation (`emcl_gd`) has an inner step that overshoots theta0
(beta * lam >= 2)."""

import functools
import json
import os

from absl.testing import absltest
from absl.testing import parameterized
import jax
import jax.numpy as jnp
import numpy as np

import emcl_jax
import fixtures
from emcl_jax import configs
from emcl_jax.equations import meta_grad
from emcl_jax.losses import cross_entropy

LOSS = cross_entropy(fixtures.mlp_apply)


def _batch(seed, task):
  return fixtures.make_batch(jax.random.PRNGKey(seed), n=10, task=task)


def _shares(config, batches):
  """meta_share of every update of `config` over `batches`, a tiny MLP."""
  params = fixtures.make_params(0, hidden=4, biases=True)
  state = emcl_jax.init(params, batches[0], config)
  step = jax.jit(functools.partial(emcl_jax.update, loss_fn=LOSS,
                                   config=config))
  out = []
  for i, batch in enumerate(batches):
    state, metrics = step(state, batch, jax.random.PRNGKey(i))
    out.append(float(metrics['meta_share']))
  return np.array(out)


class MetaStepShareTest(parameterized.TestCase):

  def test_hand_values(self):
    theta0 = {'a': jnp.zeros(2), 'b': jnp.zeros(1)}
    theta_k = {'a': jnp.array([3.0, 0.0]), 'b': jnp.array([4.0])}  # |.| 5
    for new, want in ((theta_k, 0.0), (theta0, 1.0),
                      ({'a': jnp.array([1.5, 0.0]), 'b': jnp.array([2.0])},
                       0.5),
                      ({'a': jnp.array([3.0, 1.0]), 'b': jnp.array([4.0])},
                       0.2)):
      self.assertAlmostEqual(
          float(meta_grad.meta_step_share(theta0, theta_k, new)), want,
          places=6)
    self.assertEqual(
        float(meta_grad.meta_step_share(theta0, theta0, theta0)), 0.0)

  # Under `inverse` (no clip) theta0' = theta0 + c (theta_k - theta0) with
  # c = alpha0 * r * lam for every parameter, so the share is |1 - c|.
  @parameterized.parameters((0.1, 0.2, 50.0), (0.1, 0.1, 50.0),
                            (0.15, 0.1, 10.0), (0.3, 1.0, 10.0))
  def test_inverse_reading_is_one_minus_alpha0_r_lam(self, alpha0, r, lam):
    config = emcl_jax.EMCLConfig(alpha0=alpha0, r=r, lam=lam, beta=0.1,
                                 memory_size=0, meta_lr='inverse',
                                 meta_h_norm='same')
    shares = _shares(config, [_batch(i, 0) for i in range(3)])
    np.testing.assert_allclose(shares, abs(1 - alpha0 * r * lam), atol=1e-4)


# The fields that set the Eq 8 step's factor alpha * lam * hn (Eq 8, 10).
_META_FIELDS = ('alpha0', 'r', 'lam', 'meta_lr', 'meta_h_norm', 'alpha_min',
                'alpha_max', 'meta_clip', 'h_norm', 'h_min', 'importance')


def _emcl_settings():
  """One shipped EMCL config (and where it is from) for each distinct
  value of the fields that set the meta step, over every benchmark and
  every EMCL method."""
  seen = {}
  for dataset in configs.BENCHMARKS:
    for method in ('emcl', 'emcl_gd', 'emcl_lr_modulation', 'emcl_si',
                   'emcl_paper'):
      params = configs.get_config(dataset, method).method.params
      key = tuple(getattr(params, f) for f in _META_FIELDS)
      seen.setdefault(key, (params, f'{dataset}/{method}'))
  return dict(seen.values())


class ShippedSettingsTest(absltest.TestCase):

  def test_no_shipped_emcl_setting_copies_the_inner_loop(self):
    # Two tasks (batches of tasks 0, 0, 1); every update's share must stay
    # clear of 0.
    batches = [_batch(10 + i, i // 2) for i in range(3)]
    shares = {where: _shares(params, batches).min()
              for params, where in _emcl_settings().items()}
    copies = {where: s for where, s in shares.items() if s < 0.05}
    self.assertEmpty(copies, 'the meta step copies theta_k')

  def test_no_shipped_gd_ablation_overshoots_theta0(self):
    # `emcl_gd`'s inner step (Eq 6 by plain gradient descent) moves
    # theta - theta0 by the factor 1 - beta * lam * hn on the regulariser's
    # part; hn is at most 1 under h_norm 'max', so the step is stable only
    # if beta * lam < 2 (at 3.75, vision's Table II values, the CNN's loss
    # is NaN at the second batch).
    unstable = {}
    for dataset in configs.BENCHMARKS:
      params = configs.get_config(dataset, 'emcl_gd').method.params
      self.assertEqual((params.inner, params.h_norm), ('gd', 'max'), dataset)
      if params.beta * params.lam >= 2:
        unstable[dataset] = params.beta * params.lam
    self.assertEmpty(unstable, 'beta * lam >= 2: the GD step overshoots')


class ScriptTest(absltest.TestCase):

  def test_meta_share_script_reports_each_task(self):
    out = os.path.join(fixtures.tmp_dir(self), 'share.json')
    # Under `inverse`: 0.3 * 0.05 * 10 = 0.15, a share of 0.85 every update.
    res = fixtures.call('meta_share', '--config.data.num_tasks=2',
                        '--config.data.samples_per_task=30',
                        '--config.method.meta_lr=inverse',
                        '--config.method.meta_h_norm=same',
                        '--config.method.r=0.05', f'--output={out}')
    self.assertEqual(res.returncode, 0, res.stderr)
    self.assertIn('alpha0*r*lam=0.15', res.stdout)
    with open(out) as f:
      rows = json.load(f)['tasks']
    self.assertEqual([r['task'] for r in rows], [0, 1])
    for row in rows:
      self.assertAlmostEqual(row['mean'], 0.85, places=3)
    res = fixtures.call('meta_share', '--method=er')
    self.assertEqual(res.returncode, 2)
    self.assertIn('no Eq 8 meta step', res.stderr)


if __name__ == '__main__':
  absltest.main()
