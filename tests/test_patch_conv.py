"""patch_conv: a convolution as image patches times a matrix equals XLA's
convolution (values and gradients) for every form the CNN models use."""

from absl.testing import absltest
from absl.testing import parameterized
import pytest
import chex
import jax
import jax.numpy as jnp
from jax import lax
import numpy as np

from emcl_jax import models
from emcl_jax import patch_conv


def _reference(x, kernel, strides, padding):
  return lax.conv_general_dilated(
      x, kernel, strides, padding,
      dimension_numbers=('NHWC', 'HWIO', 'NHWC'),
      precision=lax.Precision.HIGHEST)


class PatchConvTest(parameterized.TestCase):

  @parameterized.parameters(
      ((3, 3), (1, 1), ((1, 1), (1, 1)), 9),   # ResNet's 3x3, stride 1
      ((3, 3), (2, 2), ((1, 1), (1, 1)), 9),   # pc_cnn / ResNet stride 2
      ((3, 3), (2, 2), ((1, 1), (1, 1)), 8),   # even size, stride 2
      ((1, 1), (2, 2), 'VALID', 8),            # ResNet's shortcut
      ((3, 2), (1, 2), ((2, 0), (0, 1)), 7))   # uneven kernel and padding
  def test_equals_xla_convolution_and_its_gradients(self, window, strides,
                                                    padding, size):
    kx, kk = jax.random.split(jax.random.PRNGKey(0))
    x = jax.random.normal(kx, (2, size, size + 1, 3))
    kernel = jax.random.normal(kk, (*window, 3, 5))
    pads = [(0, 0), (0, 0)] if padding == 'VALID' else padding
    got = patch_conv.patches_conv(x, kernel, strides, pads)
    want = _reference(x, kernel, strides, padding)
    chex.assert_equal_shape((got, want))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def loss(conv, x, kernel):
      return jnp.sum(jnp.sin(conv(x, kernel)))
    got = jax.grad(lambda *a: loss(
        lambda x, k: patch_conv.patches_conv(x, k, strides, pads), *a),
                   argnums=(0, 1))(x, kernel)
    want = jax.grad(lambda *a: loss(
        lambda x, k: _reference(x, k, strides, padding), *a),
                    argnums=(0, 1))(x, kernel)
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)

  @pytest.mark.slow  # compiles convolutional models
  def test_fast_grad_conv_first_and_second_derivatives(self):
    kx, kk = jax.random.split(jax.random.PRNGKey(2))
    x = jax.random.normal(kx, (2, 7, 7, 3))
    kernel = jax.random.normal(kk, (3, 3, 3, 4))
    pads = ((1, 1), (1, 1))

    def inner(conv):
      # A gradient step on the kernel and the loss after it: what a
      # look-ahead meta-learner differentiates (second order).
      def loss(k, x):
        return jnp.sum(jnp.tanh(conv(x, k)) ** 2)

      def outer(k):
        k1 = k - 0.1 * jax.grad(loss)(k, x)
        return loss(k1, x)
      return jax.value_and_grad(outer)(kernel)

    got = inner(lambda x, k: patch_conv.fast_grad_conv(x, k, (2, 2), pads))
    want = inner(lambda x, k: _reference(x, k, (2, 2), pads))
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-4, atol=1e-4)

  @pytest.mark.slow  # compiles convolutional models
  def test_models_give_xla_convolution_outputs(self):
    # The same parameters through flax's own convolution and through
    # patch_conv (what the models use on the CPU): the same logits.
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 3))
    for model in (models.make('pc_cnn', 10),
                  models.make('resnet18_reduced', 10)):
      params = model.init(jax.random.PRNGKey(0), x)
      ours = model.apply(params, x)
      try:
        models._CONV = lax.conv_general_dilated  # pylint: disable=protected-access
        theirs = type(model)(**{f: getattr(model, f) for f in
                                model.__dataclass_fields__
                                if f not in ('parent', 'name')}).apply(
                                    params, x)
      finally:
        models._CONV = patch_conv.conv_general_dilated  # pylint: disable=protected-access
      np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4)

  def test_other_forms_are_xla_convolution(self):
    x = jnp.ones((1, 6, 6, 2))
    kernel = jnp.ones((3, 3, 2, 2))
    dims = lax.conv_dimension_numbers(x.shape, kernel.shape,
                                      ('NHWC', 'HWIO', 'NHWC'))
    got = patch_conv.conv_general_dilated(x, kernel, (1, 1), 'SAME',
                                          rhs_dilation=(2, 2),
                                          dimension_numbers=dims)
    np.testing.assert_array_equal(got, lax.conv_general_dilated(
        x, kernel, (1, 1), 'SAME', rhs_dilation=(2, 2),
        dimension_numbers=dims))


if __name__ == '__main__':
  absltest.main()
