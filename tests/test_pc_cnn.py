"""La-MAML's pc_cnn: parameter counts against La-MAML's layer lists, shapes,
a torch-layout (NCHW) reference forward, its initialisation, one SGD step,
and the registry."""

from absl.testing import absltest
from absl.testing import parameterized
import pytest
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from emcl_jax import models

# La-MAML's model/meta/modelfactory.py, 'pc_cnn' (channels = 160):
# ('conv2d', [out, in, k, k, stride, padding]) and ('linear', [out, in]),
# each with a bias in model/meta/learner.py.
LAMAML_TINYIMAGENET = [
    ('conv2d', [160, 3, 3, 3, 2, 1]),
    ('conv2d', [160, 160, 3, 3, 2, 1]),
    ('conv2d', [160, 160, 3, 3, 2, 1]),
    ('conv2d', [160, 160, 3, 3, 2, 1]),
    ('linear', [640, 16 * 160]),
    ('linear', [640, 640]),
    ('linear', [200, 640]),  # sizes[-1] = n_outputs = 200
]
LAMAML_CIFAR100 = [
    ('conv2d', [160, 3, 3, 3, 2, 1]),
    ('conv2d', [160, 160, 3, 3, 2, 1]),
    ('conv2d', [160, 160, 3, 3, 2, 1]),
    ('linear', [320, 16 * 160]),
    ('linear', [320, 320]),
    ('linear', [100, 320]),
]


def torch_count(config):
  """Parameters of a La-MAML layer list as torch counts them."""
  total = 0
  for name, p in config:
    total += (p[0] * p[1] * p[2] * p[3] if name == 'conv2d'
              else p[0] * p[1]) + p[0]
  return total


def count(model, x):
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))


def reference_forward(params, x, num_convs):
  """La-MAML's torch forward (NCHW, F.conv2d stride 2 padding 1, relu,
  x.view(B, -1), F.linear) written with lax on the same weights moved to
  torch's layouts: an independent check of strides, padding, flatten order
  and layer order."""
  p = params['params']
  h = jnp.asarray(x, jnp.float32).transpose(0, 3, 1, 2) / 255.0  # NCHW
  for i in range(num_convs):
    w = p[f'conv{i + 1}']['kernel'].transpose(3, 2, 0, 1)  # [out, in, k, k]
    h = jax.lax.conv_general_dilated(
        h, w, (2, 2), ((1, 1), (1, 1)),
        dimension_numbers=('NCHW', 'OIHW', 'NCHW'),
        precision=jax.lax.Precision.HIGHEST)
    h = jax.nn.relu(h + p[f'conv{i + 1}']['bias'][None, :, None, None])
  h = h.reshape(h.shape[0], -1)  # torch's view: channel-major
  for i in range(3):
    w = p[f'linear{i + 1}']['kernel'].T  # torch's [out, in]
    h = jnp.dot(h, w.T, precision=jax.lax.Precision.HIGHEST)
    h = h + p[f'linear{i + 1}']['bias']
    if i < 2:
      h = jax.nn.relu(h)
  return h


class ParamCountTest(parameterized.TestCase):

  def test_hand_arithmetic(self):
    # Convolutions: (3 * 3 * 3 + 1) * 160 = 4,480; (160 * 3 * 3 + 1) * 160
    # = 230,560 each. Spatial: 64 -> 32 -> 16 -> 8 -> 4 (four convs) and
    # 32 -> 16 -> 8 -> 4 (three): both flatten 4 * 4 * 160 = 2,560.
    first, other = 28 * 160, 1441 * 160
    self.assertEqual((first, other), (4_480, 230_560))
    tiny = first + 3 * other + 2561 * 640 + 641 * 640 + 641 * 200
    self.assertEqual(tiny, 4_480 + 691_680 + 1_639_040 + 410_240 + 128_200)
    self.assertEqual(tiny, 2_873_640)
    cifar = first + 2 * other + 2561 * 320 + 321 * 320 + 321 * 100
    self.assertEqual(cifar, 4_480 + 461_120 + 819_520 + 102_720 + 32_100)
    self.assertEqual(cifar, 1_419_940)
    self.assertEqual(torch_count(LAMAML_TINYIMAGENET), tiny)
    self.assertEqual(torch_count(LAMAML_CIFAR100), cifar)

  @parameterized.named_parameters(
      ('tinyimagenet', (1, 64, 64, 3), 200, 2_873_640),
      ('cifar100', (1, 32, 32, 3), 100, 1_419_940),
      ('mnist_padded_to_32', (1, 28, 28), 10, 1_419_940 - 321 * 90),
  )
  def test_equals_lamaml(self, shape, num_classes, expected):
    model = models.make('pc_cnn', num_classes)
    self.assertEqual(count(model, jnp.zeros(shape, jnp.uint8)), expected)

  def test_layer_shapes(self):
    model = models.make('pc_cnn', 200)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                            jnp.zeros((1, 64, 64, 3), jnp.uint8))['params']
    got = {k: {n: v.shape for n, v in layer.items()}
           for k, layer in shapes.items()}
    conv = lambda cin: {'kernel': (3, 3, cin, 160), 'bias': (160,)}
    dense = lambda cin, cout: {'kernel': (cin, cout), 'bias': (cout,)}
    self.assertEqual(got, {'conv1': conv(3), 'conv2': conv(160),
                           'conv3': conv(160), 'conv4': conv(160),
                           'linear1': dense(2560, 640),
                           'linear2': dense(640, 640),
                           'linear3': dense(640, 200)})

  def test_other_sizes_need_layers(self):
    x = jnp.zeros((1, 84, 84, 3), jnp.uint8)
    with self.assertRaisesRegex(ValueError, 'no layers for 84x84 images; '
                                'give num_convs and hidden'):
      count(models.make('pc_cnn', 100), x)
    with self.assertRaisesRegex(ValueError, 'no layers for 64x32 images'):
      count(models.make('pc_cnn', 100), jnp.zeros((1, 64, 32, 3), jnp.uint8))
    # 84 -> 42 -> 21 -> 11 -> 6: 6 * 6 * 160 = 5,760 features.
    model = models.make('pc_cnn', 100, num_convs=4, hidden=640)
    self.assertEqual(count(model, x),
                     4_480 + 3 * 230_560 + 5761 * 640 + 641 * 640 + 641 * 100)


class ForwardTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ('tinyimagenet', 64, 200, 4),
      ('cifar100', 32, 100, 3),
  )
  @pytest.mark.slow  # compiles a convolutional model
  def test_shape_and_torch_reference(self, side, num_classes, num_convs):
    model = models.make('pc_cnn', num_classes)
    x = jax.random.randint(jax.random.PRNGKey(1), (2, side, side, 3), 0, 256,
                           jnp.uint8)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    # Nonzero biases, so that their place is checked too.
    params = jax.tree_util.tree_map_with_path(
        lambda path, v: (v + 0.01 * jnp.arange(v.size).reshape(v.shape) / v.size
                         if path[-1].key == 'bias' else v), params)
    logits = jax.jit(model.apply)(params, x)
    chex.assert_shape(logits, (2, num_classes))
    chex.assert_tree_all_finite(logits)
    np.testing.assert_allclose(logits, reference_forward(params, x, num_convs),
                               rtol=2e-4, atol=2e-4)
    # uint8 is scaled to [0, 1] as prepare_images does.
    np.testing.assert_allclose(
        logits, model.apply(params, x.astype(jnp.float32) / 255.0),
        rtol=1e-5, atol=1e-5)

  def test_mean_std(self):
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    model = models.make('pc_cnn', 200, mean=mean, std=std)
    x = jax.random.randint(jax.random.PRNGKey(1), (1, 64, 64, 3), 0, 256,
                           jnp.uint8)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    plain = models.make('pc_cnn', 200)
    want = plain.apply(params, (x / 255.0 - jnp.array(mean)) / jnp.array(std))
    np.testing.assert_allclose(model.apply(params, x), want, rtol=1e-4,
                               atol=1e-4)

  def test_initialisation_is_kaiming_normal(self):
    model = models.make('pc_cnn', 200)
    params = jax.jit(model.init)(jax.random.PRNGKey(0),
                                 jnp.zeros((1, 64, 64, 3), jnp.uint8))['params']
    for name, fan_in in (('conv1', 27), ('conv2', 1440), ('linear1', 2560),
                         ('linear3', 640)):
      w = np.asarray(params[name]['kernel'])
      std = np.sqrt(2.0 / fan_in)  # torch's kaiming_normal_: gain sqrt(2)
      self.assertAlmostEqual(w.std() / std, 1.0, delta=0.05 if w.size > 4000
                             else 0.2)
      np.testing.assert_array_equal(params[name]['bias'], 0.0)
    # Untruncated: a 1.6M-entry normal reaches beyond 4 standard deviations.
    w = np.asarray(params['linear1']['kernel'])
    self.assertGreater(np.abs(w).max(), 4 * np.sqrt(2.0 / 2560))

  @pytest.mark.slow  # compiles a convolutional model
  def test_one_sgd_step_reduces_the_loss(self):
    model = models.make('pc_cnn', 200)
    kx, ky, kp = jax.random.split(jax.random.PRNGKey(3), 3)
    x = jax.random.randint(kx, (8, 64, 64, 3), 0, 256, jnp.uint8)
    y = jax.random.randint(ky, (8,), 0, 200)
    params = model.init(kp, x[:1])

    def loss(p):
      return optax.softmax_cross_entropy_with_integer_labels(
          model.apply(p, x), y).mean()

    before, grads = jax.jit(jax.value_and_grad(loss))(params)
    chex.assert_tree_all_finite(grads)
    opt = optax.sgd(1e-3)
    updates, _ = opt.update(grads, opt.init(params), params)
    after = jax.jit(loss)(optax.apply_updates(params, updates))
    self.assertLess(float(after), float(before))


class RegistryTest(absltest.TestCase):

  def test_make(self):
    self.assertIs(models.MODELS['pc_cnn'], models.PCCNN)
    model = models.make('pc_cnn', 200)
    self.assertIsInstance(model, models.PCCNN)
    self.assertEqual((model.num_classes, model.channels), (200, 160))

  def test_make_errors(self):
    for kwargs in (dict(num_convs=3), dict(hidden=320)):
      with self.assertRaisesRegex(ValueError, 'give pc_cnn both num_convs '
                                  'and hidden, or neither'):
        models.make('pc_cnn', 100, **kwargs)


if __name__ == '__main__':
  absltest.main()
