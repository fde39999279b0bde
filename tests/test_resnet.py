"""GEM's reduced ResNet-18: parameter counts against torch's, shapes, per-
sample normalisation, gradients, and the model registry."""

from absl.testing import absltest
from absl.testing import parameterized
import pytest
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from emcl_jax import models


def gem_param_count(num_classes, image_size, nf=20):
  """Parameters of GEM's ResNet18(num_classes, nf) as torch counts them:
  conv weights k*k*in*out (no bias), BatchNorm weight and bias (2 per
  channel), the linear layer (F + 1) * num_classes."""
  conv = lambda k, cin, cout: k * k * cin * cout
  bn = lambda c: 2 * c
  total = conv(3, 3, nf) + bn(nf)
  cin, size = nf, image_size
  for width, stride in zip((nf, 2 * nf, 4 * nf, 8 * nf), (1, 2, 2, 2)):
    for s in (stride, 1):
      total += conv(3, cin, width) + bn(width) + conv(3, width, width)
      total += bn(width)
      if s != 1 or cin != width:
        total += conv(1, cin, width) + bn(width)
      size = (size + 2 - 3) // s + 1  # torch: padding 1, floor
      cin = width
  pooled = (size - 4) // 4 + 1  # avg_pool2d(out, 4)
  return total + (8 * nf * pooled * pooled + 1) * num_classes


def count(model, x):
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))


def random_params(model, x, seed=0):
  """Parameters of the shapes model.init gives: kernels N(0, 1/fan_in)
  (flax's lecun_normal, untruncated), norm scales 1, biases 0."""
  rng = np.random.default_rng(seed)
  def fill(path, leaf):
    name = path[-1].key
    if name in ('scale', 'bias'):
      return jnp.full(leaf.shape, float(name == 'scale'), leaf.dtype)
    fan_in = int(np.prod(leaf.shape[:-1]))
    return jnp.asarray(rng.normal(0, fan_in ** -0.5, leaf.shape), leaf.dtype)
  shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
  return jax.tree_util.tree_map_with_path(fill, shapes)


class ParamCountTest(parameterized.TestCase):

  def test_hand_formula(self):
    # Before the linear layer: conv1 540 + bn 40; layer1 2 x 7,280; layer2
    # 22,640 + 28,960; layer3 90,080 + 115,520; layer4 359,360 + 461,440.
    body = 540 + 40 + 2 * 7280 + 22640 + 28960 + 90080 + 115520 + 359360
    body += 461440
    self.assertEqual(body, 1_093_140)
    self.assertEqual(gem_param_count(100, 32), body + 161 * 100)
    self.assertEqual(gem_param_count(100, 84), body + 641 * 100)

  @parameterized.named_parameters(
      ('cifar', (1, 32, 32, 3), 100, 1_109_240),
      ('miniimagenet', (1, 84, 84, 3), 100, 1_157_240),
      ('mnist', (1, 28, 28), 10, 1_094_750),
  )
  def test_equals_gem(self, shape, num_classes, expected):
    size = 32 if len(shape) == 3 else shape[1]
    self.assertEqual(gem_param_count(num_classes, size), expected)
    for norm in ('group', 'instance', 'layer', 'batch'):
      model = models.ResNet18Reduced(num_classes=num_classes, norm=norm)
      self.assertEqual(count(model, jnp.zeros(shape, jnp.uint8)), expected)

  def test_no_norm_drops_only_norm_parameters(self):
    model = models.ResNet18Reduced(norm='none')
    norms = 2 * (20 + 4 * 20 + 2 * 40 * 2 + 40 + 2 * 80 * 2 + 80
                 + 2 * 160 * 2 + 160)
    self.assertEqual(count(model, jnp.zeros((1, 32, 32, 3), jnp.uint8)),
                     1_109_240 - norms)

  @parameterized.parameters(*models.NORMS)
  def test_params_only_no_mutable_collections(self, norm):
    model = models.ResNet18Reduced(norm=norm)
    shapes = jax.eval_shape(model.init, jax.random.PRNGKey(0),
                            jnp.zeros((1, 32, 32, 3), jnp.uint8))
    self.assertEqual(list(shapes), ['params'])
    self.assertEqual(shapes['params']['linear']['kernel'].shape, (160, 100))
    if norm != 'none':
      self.assertEqual(shapes['params']['norm1']['scale'].shape, (20,))
      self.assertEqual(
          shapes['params']['layer2_0']['shortcut_norm']['bias'].shape, (40,))


class ForwardTest(parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    # One set of parameters for all tests, and jitted applies (one compile
    # per input shape): model.init's shapes, filled as its initialisers do
    # (compiling ~60 random initialisers takes 10 s on a busy CPU).
    cls.model = models.make('resnet18_reduced', 100)
    cls.x = jax.random.randint(jax.random.PRNGKey(1), (2, 32, 32, 3), 0, 256,
                               jnp.uint8)
    cls.params = random_params(cls.model, cls.x[:1])
    cls.apply = staticmethod(jax.jit(cls.model.apply))

  def test_output_shape_32x32_and_mnist(self):
    logits = self.apply(self.params, self.x)
    chex.assert_shape(logits, (2, 100))
    chex.assert_tree_all_finite(logits)
    # MNIST [B, 28, 28] is padded to 32x32: the same parameters apply.
    mnist = self.x[..., 0][:, 2:30, 2:30]
    logits = self.apply(self.params, mnist)
    chex.assert_shape(logits, (2, 100))
    chex.assert_tree_all_finite(logits)

  def test_output_shape_84x84(self):
    x = jnp.full((1, 84, 84, 3), 0.5, jnp.float32)
    shapes = jax.eval_shape(self.model.init, jax.random.PRNGKey(0), x)
    self.assertEqual(shapes['params']['linear']['kernel'].shape, (640, 100))
    # Only the linear layer depends on the image size.
    params = random_params(self.model, x)
    chex.assert_trees_all_equal_shapes(params, shapes)
    chex.assert_trees_all_equal(
        jax.tree.map(jnp.shape, params['params']['layer4_1']),
        jax.tree.map(jnp.shape, self.params['params']['layer4_1']))
    logits = self.apply(params, x)
    chex.assert_shape(logits, (1, 100))
    chex.assert_tree_all_finite(logits)

  def test_batch_of_one_equals_its_row(self):
    both = self.apply(self.params, self.x)
    np.testing.assert_allclose(self.apply(self.params, self.x[1:]), both[1:],
                               rtol=1e-5, atol=1e-5)
    self.assertFalse(np.allclose(both[0], both[1]))

  def test_batch_of_one_equals_its_row_frozen_batch_norm(self):
    apply = jax.jit(models.make('resnet18_reduced', 100, norm='batch').apply)
    both = apply(self.params, self.x)  # the same parameter tree
    np.testing.assert_allclose(apply(self.params, self.x[1:]), both[1:],
                               rtol=1e-5, atol=1e-5)

  @pytest.mark.slow  # compiles a ResNet gradient
  def test_one_sample_gradient_is_finite(self):
    def loss(p):
      logits = self.model.apply(p, self.x[:1])
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, jnp.array([3])).mean()
    grads = jax.jit(jax.grad(loss))(self.params)
    chex.assert_trees_all_equal_shapes(grads, self.params)
    chex.assert_tree_all_finite(grads)
    for name in ('conv1', 'linear'):
      leaf = jax.tree.leaves(grads['params'][name])[0]
      self.assertGreater(float(jnp.abs(leaf).max()), 0.0)

  def test_mnist_is_padded_and_repeated(self):
    x = np.arange(28 * 28, dtype=np.uint32).reshape(1, 28, 28) % 251 + 1
    x = x.astype(np.uint8)
    for inp in (x, x.reshape(1, 784)):
      out = models.prepare_images(jnp.asarray(inp))
      chex.assert_shape(out, (1, 32, 32, 3))
      for c in range(3):
        np.testing.assert_allclose(out[0, 2:30, 2:30, c], x[0] / 255.0,
                                   rtol=1e-6)
      self.assertEqual(float(jnp.abs(out[0, :2]).sum()), 0.0)
      self.assertEqual(float(jnp.abs(out[0, :, 30:]).sum()), 0.0)

  def test_standardisation(self):
    x = jnp.full((1, 2, 2, 3), 51, jnp.uint8)  # 0.2
    out = models.prepare_images(x, mean=(0.1, 0.2, 0.3), std=(0.5, 1., 2.))
    np.testing.assert_allclose(out[0, 0, 0], [0.2, 0.0, -0.05], atol=1e-6)

  def test_frozen_batch_norm(self):
    layer = models.FrozenBatchNorm()
    x = jnp.array([[2.0, -1.0]])
    params = layer.init(jax.random.PRNGKey(0), x)
    chex.assert_trees_all_equal(params['params']['scale'], jnp.ones(2))
    params = {'params': {'scale': jnp.array([1.0, 3.0]),
                         'bias': jnp.array([0.5, 0.0])}}
    np.testing.assert_allclose(layer.apply(params, x),
                               [[2.0 / np.sqrt(1 + 1e-5) + 0.5,
                                 -3.0 / np.sqrt(1 + 1e-5)]], rtol=1e-6)


class RegistryTest(absltest.TestCase):

  def test_make(self):
    self.assertEqual(set(models.MODELS), {'mlp', 'resnet18_reduced', 'pc_cnn'})
    mlp = models.make('mlp', 10)
    self.assertIsInstance(mlp, models.MLP)
    self.assertEqual(mlp.num_classes, 10)
    resnet = models.make('resnet18_reduced', 100, norm='batch')
    self.assertEqual((resnet.num_classes, resnet.norm), (100, 'batch'))

  def test_make_errors(self):
    with self.assertRaisesRegex(ValueError, "unknown model 'resnet50'; use "
                                'one of mlp, resnet18_reduced'):
      models.make('resnet50', 10)
    with self.assertRaisesRegex(ValueError, "unknown norm 'bn'"):
      models.make('resnet18_reduced', 10, norm='bn')
    with self.assertRaisesRegex(ValueError, 'num_groups=3 must divide'):
      models.make('resnet18_reduced', 10, num_groups=3)


if __name__ == '__main__':
  absltest.main()
