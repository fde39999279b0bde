"""A convolution as image patches times a matrix, for the CPU.

XLA's CPU backend computes a convolution's gradient inside a compiled loop
(`lax.scan`, `lax.while_loop`) 10 to 30 times slower than the same
gradient outside one (measured: two 3x3 layers on a batch of 20, ten
carried-parameter gradient steps, 2.1 s in a scan against 0.2 s as patches
and a matrix product). Every meta-continual method takes per-sample
gradient steps of the model inside the task's `lax.scan`, so the CNN models
(`models.PCCNN`, `models.ResNet18Reduced`) pass `conv_general_dilated` to
flax's `nn.Conv`: on the CPU its gradients gather the k x k shifted (and strided)
slices of the padded input and multiply them by the kernel reshaped to a
matrix, which is the same sum in another order. The forward pass stays
XLA's convolution (fast in loops and on large evaluation batches); only
the gradients go through the patches (`fast_grad_conv`). Elsewhere (GPU,
TPU), and for any form it does not cover (dilation, groups, other
layouts), it is `lax.conv_general_dilated`.
"""

import functools
from typing import Any, Optional, Sequence, Union

import jax
import jax.numpy as jnp
from jax import lax


def _explicit(padding: Union[str, Sequence[tuple[int, int]]]
              ) -> Optional[list[tuple[int, int]]]:
  """Padding pairs, or None for a form left to lax ('SAME')."""
  if isinstance(padding, str):
    return [(0, 0), (0, 0)] if padding.upper() == 'VALID' else None
  return [tuple(int(v) for v in p) for p in padding]


def patches_conv(x: jax.Array, kernel: jax.Array,
                 strides: Sequence[int],
                 padding: Sequence[tuple[int, int]]) -> jax.Array:
  """NHWC input x HWIO kernel, as shifted slices and one matrix product.

  Args:
    x: [N, H, W, C_in].
    kernel: [kh, kw, C_in, C_out].
    strides: (sh, sw).
    padding: ((top, bottom), (left, right)) zeros.

  Returns:
    [N, H', W', C_out], H' = (H + top + bottom - kh) // sh + 1 (and W').
  """
  kh, kw, c_in, c_out = kernel.shape
  (top, bottom), (left, right) = padding
  sh, sw = strides
  x = jnp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
  out_h = (x.shape[1] - kh) // sh + 1
  out_w = (x.shape[2] - kw) // sw + 1
  slices = [x[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw]
            for i in range(kh) for j in range(kw)]
  patches = slices[0] if len(slices) == 1 else jnp.concatenate(slices, -1)
  return patches @ kernel.reshape(kh * kw * c_in, c_out)


def _xla_conv(x, kernel, strides, padding):
  return lax.conv_general_dilated(x, kernel, strides, padding,
                                  dimension_numbers=('NHWC', 'HWIO', 'NHWC'))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def fast_grad_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, ...],
                   padding: tuple[tuple[int, int], ...]) -> jax.Array:
  """XLA's convolution forward; its gradients those of `patches_conv` (the
  same function, as shifted slices and matrix products, which XLA's CPU
  backend runs fast inside loops)."""
  return _xla_conv(x, kernel, strides, padding)


def _forward(x, kernel, strides, padding):
  return _xla_conv(x, kernel, strides, padding), (x, kernel)


def _backward(strides, padding, saved, g):
  _, vjp = jax.vjp(lambda x, k: patches_conv(x, k, strides, padding), *saved)
  return vjp(g)


fast_grad_conv.defvjp(_forward, _backward)


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array,
                         window_strides: Sequence[int], padding: Any,
                         lhs_dilation: Optional[Sequence[int]] = None,
                         rhs_dilation: Optional[Sequence[int]] = None,
                         dimension_numbers: Any = None,
                         feature_group_count: int = 1,
                         precision: Any = None, **kwargs) -> jax.Array:
  """`lax.conv_general_dilated`'s signature (what flax's `nn.Conv` calls):
  `fast_grad_conv` on the CPU for a 2-D NHWC/HWIO convolution without
  dilation or groups, else `lax.conv_general_dilated` itself."""
  pads = _explicit(padding)
  plain = (jax.default_backend() == 'cpu' and pads is not None
           and lhs.ndim == 4 and not kwargs and feature_group_count == 1
           and precision is None
           and all(d == 1 for d in (lhs_dilation or (1, 1)))
           and all(d == 1 for d in (rhs_dilation or (1, 1)))
           and dimension_numbers == lax.conv_dimension_numbers(
               lhs.shape, rhs.shape, ('NHWC', 'HWIO', 'NHWC')))
  if not plain:
    return lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision,
        **kwargs)
  return fast_grad_conv(lhs, rhs, tuple(window_strides),
                        tuple(tuple(p) for p in pads))
