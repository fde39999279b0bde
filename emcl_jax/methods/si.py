"""SI: Synaptic Intelligence (Zenke, Poole & Ganguli, ICML 2017).

Each parameter's contribution to the drop of the loss is tracked along the
training trajectory (Eq 3, discretised: a sum over parameter updates):

  w_m += -g_m delta_m,

g the gradient of the *unregularised* loss at the step and delta the
parameter change the step actually made (regulariser included). At the end
of task mu the importance grows by (Eq 5)

  Omega_m += w_m / (Delta_m^2 + xi),  Delta = theta(t_mu) - theta(t_mu-1),

the parameters' total move over the task, xi a damping term; then w is
reset and theta* = theta(t_mu). A later task minimises (Eq 4)

  L(theta) + c sum_m Omega_m (theta_m - theta*_m)^2.

As in the official code (ganguli-lab/pathint, protocols.py), the summed
Omega is clipped at 0 (`relu`), so a parameter whose path integral points
the wrong way is not pulled apart from theta*.

Task boundaries, as in `ewc`: the state holds the current task id and the
first batch of a new task (batch.t[0] != task, `lax.cond`) consolidates the
previous task at the current parameters -- those at its end -- before its
own step. The step: one SGD step on the whole incoming batch, as `ewc`
(the official code trains mini-batches, with Adam). As for EWC, the step
is stable only while lr * 2 c Omega_m < 2, and the summed Omega grows with
every task: too large a c diverges (Permuted MNIST, lr 0.1: c 0.3).
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from emcl_jax.base import Batch, LossFn, Method, bind


class SIConfig(NamedTuple):
  """Hyper-parameters of SI.

  Attributes:
    lr: SGD learning rate of the per-batch steps.
    c: SI strength, the penalty is c sum Omega (theta - theta*)^2.
    xi: damping xi of Omega's denominator Delta^2 + xi.
  """
  lr: float = 0.1
  c: float = 0.1
  xi: float = 0.1

  def validate(self) -> 'SIConfig':
    """Raises ValueError naming the first bad field; returns self."""
    if not self.lr > 0:
      raise ValueError(f'lr must be > 0, got {self.lr}')
    if not self.c >= 0:
      raise ValueError(f'c must be >= 0, got {self.c}')
    if not self.xi > 0:
      raise ValueError(f'xi must be > 0, got {self.xi}')
    return self


class SIState(NamedTuple):
  """SI's state; every tree is float32 and shaped like params.

  Attributes:
    params: the model parameters theta.
    omega: Omega, the consolidated importance of past tasks.
    anchor: theta*, the parameters at the start of the current task (the end
      of the previous one; the initial parameters during the first task).
    path: w, the current task's path integral -sum g delta so far.
    task: id of the current task, int32 [] (-1 before the first batch).
    consolidations: task boundaries consolidated so far, int32 [].
    step: batches seen, int32 [].
  """
  params: chex.ArrayTree
  omega: chex.ArrayTree
  anchor: chex.ArrayTree
  path: chex.ArrayTree
  task: chex.Array
  consolidations: chex.Array
  step: chex.Array


def path_step(path: chex.ArrayTree, grads: chex.ArrayTree,
              delta: chex.ArrayTree) -> chex.ArrayTree:
  """Eq 3, one update: w <- w - g * delta (g unregularised gradient, delta
  the parameter change of the update)."""
  return jax.tree.map(lambda w, g, d: w - g * d, path, grads, delta)


def consolidate(omega: chex.ArrayTree, path: chex.ArrayTree,
                theta_start: chex.ArrayTree, theta_end: chex.ArrayTree,
                xi: float) -> chex.ArrayTree:
  """Eq 5: Omega <- max(Omega + w / (Delta^2 + xi), 0), Delta = theta_end -
  theta_start (the clip at 0 is the official code's)."""
  return jax.tree.map(
      lambda o, w, a, b: jnp.maximum(o + w / (jnp.square(b - a) + xi), 0.0),
      omega, path, theta_start, theta_end)


def penalty_value(omega: chex.ArrayTree, anchor: chex.ArrayTree,
                  theta: chex.ArrayTree) -> chex.Array:
  """Eq 4's surrogate without c: sum_m Omega_m (theta_m - theta*_m)^2."""
  return optax.tree.sum(jax.tree.map(
      lambda o, a, p: o * jnp.square(p - a), omega, anchor, theta))


def init(params: chex.ArrayTree, example: Batch,
         config: SIConfig = SIConfig()) -> SIState:
  """Initial state: Omega = w = 0, theta* = the initial parameters (every
  field its own buffer, so the engine can donate the state)."""
  del example
  zeros = lambda: jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32),
                               params)
  anchor = jax.tree.map(lambda p: jnp.array(p, jnp.float32, copy=True),
                        params)
  return SIState(params, zeros(), anchor, zeros(),
                 jnp.full((), -1, jnp.int32), jnp.zeros((), jnp.int32),
                 jnp.zeros((), jnp.int32))


def update(state: SIState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: SIConfig = SIConfig()
          ) -> tuple[SIState, dict[str, chex.Array]]:
  """One incoming batch (module docstring): consolidate if it starts a new
  task, then one SGD step on the penalised loss, accumulating w. `key` is
  unused (SI is deterministic).

  Returns:
    (new state, metrics): 'loss' (the batch's loss before the step, without
    the penalty), 'penalty' (c sum Omega (theta - theta*)^2 before the
    step), 'consolidated' (1.0 on a task's first batch after another task).
  """
  del key
  task = batch.t[0].astype(jnp.int32)
  boundary = (task != state.task) & (state.task >= 0)

  def consolidate_previous(carry):
    omega, anchor, path = carry
    theta = jax.tree.map(lambda p: p.astype(jnp.float32), state.params)
    return (consolidate(omega, path, anchor, theta, config.xi), theta,
            jax.tree.map(jnp.zeros_like, path))

  omega, anchor, path = jax.lax.cond(
      boundary, consolidate_previous, lambda carry: carry,
      (state.omega, state.anchor, state.path))

  ones = jnp.ones(batch.y.shape, jnp.float32)
  loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, ones)
  delta = jax.tree.map(
      lambda g, o, a, p: -config.lr * (g + 2.0 * config.c * o * (p - a)),
      grads, omega, anchor, state.params)
  params = jax.tree.map(lambda p, d: p + d.astype(p.dtype), state.params,
                        delta)
  path = path_step(path, grads, delta)
  metrics = {'loss': loss,
             'penalty': config.c * penalty_value(omega, anchor, state.params),
             'consolidated': boundary.astype(jnp.float32)}
  return SIState(params, omega, anchor, path, task,
                 state.consolidations + boundary.astype(jnp.int32),
                 state.step + 1), metrics


def method(loss_fn: LossFn, example: Batch,
           config: SIConfig = SIConfig()) -> Method:
  """SI as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
