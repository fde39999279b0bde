"""The one global-norm clip: hand-computed values of torch's formula, the
off switch (a float's and a traced value's), dtypes, jit against no-jit,
the optax form, and no second clipping formula anywhere in the library."""

import ast
import os

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fixtures
from emcl_jax import clipping



def tree(a, b):
  return {'a': jnp.asarray(a, jnp.float32), 'b': jnp.asarray(b, jnp.float32)}


class ClipTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_clips_to_torch_factor(self):
    clip = self.variant(lambda g: clipping.clip_by_global_norm(g, 2.0))
    got = clip(tree([3.0, 0.0], [4.0]))  # norm 5
    scale = 2.0 / (5.0 + 1e-6)  # min(1, max_norm / (norm + 1e-6))
    chex.assert_trees_all_close(got, tree([3.0 * scale, 0.0], [4.0 * scale]),
                                rtol=0, atol=1e-7)
    # Not exactly max_norm (optax's would be): torch adds 1e-6 to the norm.
    np.testing.assert_allclose(float(clipping.global_norm(got)),
                               2.0 * 5.0 / (5.0 + 1e-6), rtol=1e-7)

  @chex.variants(with_jit=True, without_jit=True)
  def test_leaves_a_small_gradient_as_it_is(self):
    g = tree([0.3, 0.0], [0.4])  # norm 0.5
    chex.assert_trees_all_equal(
        self.variant(lambda g: clipping.clip_by_global_norm(g, 2.0))(g), g)
    # At the threshold itself torch's factor is 2 / (2 + 1e-6) < 1.
    at = tree([1.2, 0.0], [1.6])  # norm 2
    got = self.variant(lambda g: clipping.clip_by_global_norm(g, 2.0))(at)
    chex.assert_trees_all_close(
        got, jax.tree.map(lambda v: v * (2.0 / (2.0 + 1e-6)), at),
        rtol=0, atol=1e-7)

  @chex.variants(with_jit=True, without_jit=True)
  def test_zero_max_norm_turns_it_off(self):
    g = tree([30.0, 0.0], [40.0])
    chex.assert_trees_all_equal(
        self.variant(lambda g: clipping.clip_by_global_norm(g, 0.0))(g), g)
    np.testing.assert_array_equal(clipping.clip_scale(jnp.array([5.0]), 0.0),
                                  [1.0])

  def test_a_traced_max_norm_of_zero_is_off_too(self):
    # A grid traces the clip norm: 0 (off) and 2 in one vmapped program,
    # each as its float gives it.
    g = tree([3.0, 0.0], [4.0])  # norm 5
    got = jax.jit(jax.vmap(clipping.clip_by_global_norm, in_axes=(None, 0)))(
        g, jnp.array([0.0, 2.0]))
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[0], got), g)
    chex.assert_trees_all_equal(jax.tree.map(lambda a: a[1], got),
                                clipping.clip_by_global_norm(g, 2.0))

  def test_clip_scale_of_several_norms(self):
    scale = clipping.clip_scale(jnp.array([5.0, 0.5, 0.0]), 2.0)
    np.testing.assert_allclose(scale, [2.0 / (5.0 + 1e-6), 1.0, 1.0],
                               rtol=1e-7)

  def test_global_norm_of_every_leaf_shape(self):
    rng = np.random.default_rng(12)
    g = {'matrix': rng.normal(size=(7, 5)), 'cube': rng.normal(size=(3, 2, 4)),
         'vector': rng.normal(size=(6,)), 'scalar': np.float64(1.5)}
    want = np.sqrt(sum(np.sum(np.square(v)) for v in g.values()))
    g32 = jax.tree.map(lambda v: jnp.asarray(v, jnp.float32), g)
    np.testing.assert_allclose(float(clipping.global_norm(g32)), want,
                               rtol=1e-6)
    for max_norm in (0.5 * want, 2.0 * want):
      got = clipping.clip_by_global_norm(g32, max_norm)
      scale = min(1.0, max_norm / (want + 1e-6))
      chex.assert_trees_all_close(got, jax.tree.map(lambda v: v * scale, g32),
                                  rtol=1e-6)

  def test_keeps_dtypes(self):
    g = {'f32': jnp.full((3,), 4.0, jnp.float32),
         'bf16': jnp.full((2,), 4.0, jnp.bfloat16)}
    got = clipping.clip_by_global_norm(g, 1.0)
    chex.assert_trees_all_equal_dtypes(got, g)

  def test_rows_by_vmap(self):
    rows = jnp.array([[3.0, 4.0], [0.3, 0.4]])  # norms 5 and 0.5
    got = jax.vmap(lambda r: clipping.clip_by_global_norm(r, 2.0))(rows)
    np.testing.assert_allclose(
        got, [[3.0 * 2 / (5 + 1e-6), 4.0 * 2 / (5 + 1e-6)], [0.3, 0.4]],
        rtol=1e-6)

  def test_transform_in_an_optax_chain(self):
    tx = optax.chain(clipping.clip_transform(2.0), optax.scale(-1.0))
    g = tree([3.0, 0.0], [4.0])
    out, state = tx.update(g, tx.init(g))
    chex.assert_trees_all_equal(
        out, jax.tree.map(jnp.negative, clipping.clip_by_global_norm(g, 2.0)))
    out2, _ = tx.update(g, state)  # stateless: the same again
    chex.assert_trees_all_equal(out2, out)

  def test_no_second_clipping_formula_in_the_library(self):
    # Every global-norm clip goes through emcl_jax.clipping: no optax clip
    # and no other function named like one.
    found = []
    for folder, _, files in os.walk(os.path.join(fixtures.ROOT, 'emcl_jax')):
      for f in files:
        path = os.path.join(folder, f)
        if not f.endswith('.py') or f == 'clipping.py':
          continue
        with open(path) as fh:
          module = ast.parse(fh.read())
        for node in ast.walk(module):
          if (isinstance(node, ast.Attribute) and node.attr.startswith('clip')
              and isinstance(node.value, ast.Name)
              and node.value.id == 'optax') or (
                  isinstance(node, ast.FunctionDef) and 'clip' in node.name):
            found.append(f'{os.path.relpath(path, fixtures.ROOT)}:{node.lineno}')
    self.assertEqual(found, [])

if __name__ == '__main__':
  absltest.main()
