"""EWC: Elastic Weight Consolidation (Kirkpatrick et al., PNAS 2017), and its
online variant (Schwarz et al., ICML 2018, "Progress & Compress", Eq 4).

After each task k, EWC stores the parameters theta*_k and the diagonal
empirical Fisher F_k at them (`fisher.empirical_fisher`); while training on
a later task it minimises (Kirkpatrick et al., Eq 3, one term per past task)

  L(theta) + lam/2 sum_k sum_m F_k,m (theta_m - theta*_k,m)^2.

Constant memory. The sum of per-task quadratics is one quadratic: with
A = sum_k F_k, B = sum_k F_k theta*_k and C = sum_k sum_m F_k,m theta*_k,m^2,

  sum_k sum_m F_k,m (theta_m - theta*_k,m)^2
      = sum_m (A_m theta_m^2 - 2 B_m theta_m) + C,

so the state keeps two parameter-sized trees (A, B) and one scalar (C)
however many tasks have passed, instead of a (F_k, theta*_k) pair per task
as the official code does. The gradient, lam (A theta - B), is exact; only
the reported penalty value loses precision to cancellation near theta*.

Online EWC (`online=True`) keeps one running Fisher anchored at the last
task's parameters: F <- ewc_gamma F + F_new, theta* <- theta_end, i.e.
A = F, B = F theta*, C = sum F theta*^2 in the same representation.

Task boundaries. The engine only calls `update`, so the state holds the
current task id; on the first batch of a new task (batch.t[0] != task,
`lax.cond`) the Fisher is computed at the current parameters -- those at
the end of the previous task -- on `fisher_samples` samples of the previous
task kept in the state, and the penalty is consolidated, as the GEM
repository's model/ewc.py does at `if t != self.current_task`. That code,
the EWC the EMCL paper ran (facebookresearch/GradientEpisodicMemory), keeps
the first n_memories samples of the task; we keep a reservoir sample of the
task (`memory.add`, reset at each task start), the same as the first
samples until the buffer fills and a uniform draw of the task after.

The step, as in that code: one SGD step on the whole incoming batch (not
one step per sample), theta <- theta - lr (grad L_batch + lam (A theta - B)).
Its `memory_strength` multiplies sum F (theta - theta*)^2 without the 1/2,
so its value s is our lam = 2 s, and its F is the square of the mean
gradient rather than the empirical Fisher used here (see `fisher`).

Stability: an explicit step on the quadratic is stable only while
lr * lam * A_m < 2 for every m, and standard EWC's A grows with every task;
too large a lam makes the run oscillate and then diverge (the engine raises
NonFiniteLossError). Permuted MNIST, lr 0.1: lam 1 runs, lam 10 diverges at
task 18 of 20.
"""

from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax

from emcl_jax.methods import fisher as fisher_lib
from emcl_jax.methods import memory as memory_lib
from emcl_jax.base import Batch, LossFn, Method, bind


class EWCConfig(NamedTuple):
  """Hyper-parameters of EWC and online EWC.

  Attributes:
    lr: SGD learning rate of the per-batch steps.
    lam: EWC strength lambda, the penalty is lam/2 sum F (theta - theta*)^2.
    fisher_samples: samples of each task kept to estimate its Fisher.
    online: online EWC (one decayed Fisher, anchored at the last task).
    ewc_gamma: online EWC's decay of the old Fisher (F <- gamma F + F_new).
  """
  lr: float = 0.1
  lam: float = 1.0
  fisher_samples: int = 200
  online: bool = False
  ewc_gamma: float = 1.0

  def validate(self) -> 'EWCConfig':
    """Raises ValueError naming the first bad field; returns self."""
    if not self.lr > 0:
      raise ValueError(f'lr must be > 0, got {self.lr}')
    if not self.lam >= 0:
      raise ValueError(f'lam must be >= 0, got {self.lam}')
    if self.fisher_samples < 1:
      raise ValueError(f'fisher_samples must be >= 1, got '
                       f'{self.fisher_samples}')
    if not 0 <= self.ewc_gamma <= 1:
      raise ValueError(f'ewc_gamma must be in [0, 1], got {self.ewc_gamma}')
    return self


class EWCPenalty(NamedTuple):
  """sum_k sum_m F_k,m (theta_m - theta*_k,m)^2 collapsed to one quadratic.

  Attributes:
    fisher: A = sum_k F_k (online: the decayed running Fisher), float32
      tree like params.
    fisher_anchor: B = sum_k F_k theta*_k (online: A theta*), float32 tree
      like params.
    const: C = sum_k sum_m F_k,m theta*_k,m^2, float32 [].
  """
  fisher: chex.ArrayTree
  fisher_anchor: chex.ArrayTree
  const: chex.Array


class EWCState(NamedTuple):
  """EWC's state.

  Attributes:
    params: the model parameters theta.
    penalty: the consolidated quadratic of all past tasks (`EWCPenalty`).
    buffer: reservoir sample of the current task, `fisher_samples` slots
      (`memory.MemoryState`; `seen` counts the task's samples so far).
    task: id of the current task, int32 [] (-1 before the first batch).
    consolidations: task boundaries consolidated so far, int32 [].
    step: batches seen, int32 [].
  """
  params: chex.ArrayTree
  penalty: EWCPenalty
  buffer: memory_lib.MemoryState
  task: chex.Array
  consolidations: chex.Array
  step: chex.Array


def penalty_init(params: chex.ArrayTree) -> EWCPenalty:
  """The penalty of no past task: A = B = 0, C = 0 (distinct buffers, so
  the engine can donate the state)."""
  zeros = lambda: jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32),
                               params)
  return EWCPenalty(zeros(), zeros(), jnp.zeros((), jnp.float32))


def consolidate(penalty: EWCPenalty, fisher: chex.ArrayTree,
                theta_star: chex.ArrayTree, *, online: bool = False,
                gamma: float = 1.0) -> EWCPenalty:
  """Adds task k's quadratic F_k (theta - theta*_k)^2 to the penalty.

  Standard EWC (Kirkpatrick et al., Eq 3 summed over tasks): A += F_k,
  B += F_k theta*_k, C += sum F_k theta*_k^2. Online EWC (Schwarz et al.,
  Eq 4 and the Fisher update after it): A <- gamma A + F_k, anchored at
  theta*_k alone: B = A theta*_k, C = sum A theta*_k^2.

  Args:
    penalty: the penalty of the tasks before k.
    fisher: F_k, the Fisher of task k at theta*_k.
    theta_star: theta*_k, the parameters at the end of task k.
    online: online EWC if True (static).
    gamma: online EWC's decay of the old Fisher.

  Returns:
    The penalty of the tasks up to k.
  """
  theta_star = jax.tree.map(lambda p: p.astype(jnp.float32), theta_star)
  if online:
    fisher = jax.tree.map(lambda a, f: gamma * a + f, penalty.fisher, fisher)
    anchor = jax.tree.map(jnp.multiply, fisher, theta_star)
    const = optax.tree.vdot(anchor, theta_star)
  else:
    new_anchor = jax.tree.map(jnp.multiply, fisher, theta_star)
    const = penalty.const + optax.tree.vdot(new_anchor, theta_star)
    fisher = jax.tree.map(jnp.add, penalty.fisher, fisher)
    anchor = jax.tree.map(jnp.add, penalty.fisher_anchor, new_anchor)
  return EWCPenalty(fisher, anchor, const)


def penalty_value(penalty: EWCPenalty, theta: chex.ArrayTree) -> chex.Array:
  """sum_k sum_m F_k,m (theta_m - theta*_k,m)^2 as sum(A theta^2 - 2 B theta)
  + C (module docstring); float32 []."""
  return optax.tree.sum(jax.tree.map(
      lambda a, b, p: (a * p - 2.0 * b) * p, penalty.fisher,
      penalty.fisher_anchor, theta)) + penalty.const


def penalty_grad(penalty: EWCPenalty, theta: chex.ArrayTree,
                 lam: float) -> chex.ArrayTree:
  """Gradient of lam/2 * `penalty_value`: lam (A theta - B)."""
  return jax.tree.map(lambda a, b, p: lam * (a * p - b), penalty.fisher,
                      penalty.fisher_anchor, theta)


def buffer_batch(buffer: memory_lib.MemoryState) -> tuple[Batch, chex.Array]:
  """The buffer's samples and weights (1 for a filled slot, 0 otherwise)."""
  weights = jnp.arange(buffer.size) < buffer.seen
  return (Batch(buffer.x, buffer.y, buffer.t),
          weights.astype(jnp.float32))


def init(params: chex.ArrayTree, example: Batch,
         config: EWCConfig = EWCConfig()) -> EWCState:
  """Initial state: no penalty, an empty buffer, no task seen yet."""
  return EWCState(params, penalty_init(params),
                  memory_lib.init(config.fisher_samples, example),
                  jnp.full((), -1, jnp.int32), jnp.zeros((), jnp.int32),
                  jnp.zeros((), jnp.int32))


def update(state: EWCState, batch: Batch, key: chex.PRNGKey, *,
           loss_fn: LossFn, config: EWCConfig = EWCConfig()
          ) -> tuple[EWCState, dict[str, chex.Array]]:
  """One incoming batch (module docstring): consolidate if it starts a new
  task, store it in the task's buffer, one SGD step on the penalised loss.

  Returns:
    (new state, metrics): 'loss' (the batch's loss before the step, without
    the penalty), 'penalty' (lam/2 sum F (theta - theta*)^2 before the
    step), 'consolidated' (1.0 on a task's first batch after another task).
  """
  task = batch.t[0].astype(jnp.int32)
  new_task = task != state.task
  boundary = new_task & (state.task >= 0)

  def consolidate_previous(penalty):
    samples, weights = buffer_batch(state.buffer)
    f = fisher_lib.empirical_fisher(loss_fn, state.params, samples, weights)
    return consolidate(penalty, f, state.params, online=config.online,
                       gamma=config.ewc_gamma)

  penalty = jax.lax.cond(boundary, consolidate_previous, lambda p: p,
                         state.penalty)
  buffer = state.buffer._replace(
      seen=jnp.where(new_task, 0, state.buffer.seen))
  buffer = memory_lib.add(buffer, batch, key)

  ones = jnp.ones(batch.y.shape, jnp.float32)
  loss, grads = jax.value_and_grad(loss_fn)(state.params, batch, ones)
  reg = penalty_grad(penalty, state.params, config.lam)
  params = jax.tree.map(
      lambda p, g, r: p - (config.lr * (g + r)).astype(p.dtype),
      state.params, grads, reg)
  metrics = {'loss': loss,
             'penalty': 0.5 * config.lam * penalty_value(penalty,
                                                         state.params),
             'consolidated': boundary.astype(jnp.float32)}
  return EWCState(params, penalty, buffer, task,
                  state.consolidations + boundary.astype(jnp.int32),
                  state.step + 1), metrics


def method(loss_fn: LossFn, example: Batch,
           config: EWCConfig = EWCConfig()) -> Method:
  """EWC as a `Method` (init/update pair) for the training engine."""
  return bind(init, update, loss_fn, example, config)
