"""Hyper-parameters as traced arrays: a grid of settings as one method.

A method's config is a NamedTuple of Python values, closed over by its
update: changing one recompiles. Its numeric hyper-parameters, the float
fields (`traceable`), are the pytree a grid injects instead, in the manner
of `optax.inject_hyperparams`: `tuned(build)` is the `Method` whose state
carries them beside the method's own state (`Tuned`), and whose update
rebuilds the method from them inside the compiled call (`build(hparams)`,
which builds from `with_values(config, hparams)`: the config with the arrays
in place of the floats). vmapped over a leading settings axis, G settings
that share every other field train as one program:
`engine.train_and_evaluate_grid` runs G settings x S seeds that way, each
setting equal to its solo run up to float reassociation (exactly equal
where XLA folds the constant the same way).

Every method runs so by construction: a config's values are checked once,
where they enter (its class's `validate`, called by `configs.resolve`), and
a method's builders (`base.bind`, each module's `method` and `init`, the
transformations they chain) use them as they are, only in array arithmetic,
never in a Python test; a float whose 0 means "off" (clip norms) turns the
feature off through `jnp.where` (`clipping.clip_scale`). Ints, strings and
booleans (memory sizes, glances, modes) shape the program and stay static.

A user's own code keeps calling `update` with a config of floats, and can
vmap it over settings the same way:

  def step(beta, state, batch, key):
    config = grid.with_values(emcl.EMCLConfig(), {'beta': beta})
    return emcl.update(state, batch, key, loss_fn=loss_fn, config=config)

  jax.vmap(step, in_axes=(0, 0, None, None))(jnp.array([0.03, 0.1]),
                                            states, batch, key)
"""

from typing import Any, Callable, NamedTuple, Sequence

import chex
import jax
import jax.numpy as jnp

from emcl_jax.base import Method


class Tuned(NamedTuple):
  """A method's state with the numeric hyper-parameters it trains with.

  Attributes:
    hparams: {field: scalar array}, the traced fields of the method's config.
    state: the method's own state.
  """
  hparams: dict[str, chex.Array]
  state: Any


def traceable(config: Any) -> tuple[str, ...]:
  """The fields of a method config (a NamedTuple) that may be traced: those
  whose default is a float. Ints, strings and booleans change the program
  (memory sizes, glances, modes) and stay static."""
  return tuple(name for name, value in config._asdict().items()
               if isinstance(value, float))


def with_values(config: Any, hparams: dict[str, Any]) -> Any:
  """`config` with the fields of `hparams` replaced by (traced) scalars: the
  config a method is built with inside a grid's compiled call. The values
  are not checked here (a traced one cannot be): check each setting's
  Python values first, `config.validate()` (`configs.resolve` does).

  Raises:
    ValueError: a field that is not traceable.
  """
  bad = sorted(set(hparams) - set(traceable(config)))
  if bad:
    raise ValueError(f'{type(config).__name__} field(s) {", ".join(bad)} '
                     'change the program and cannot be traced; give each '
                     'value its own run')
  return config._replace(**hparams)


def builder(factory: Callable[..., Method], loss_fn: Callable[..., Any],
            example: Any, config: Any
            ) -> Callable[[dict[str, chex.Array]], Method]:
  """build(hparams) -> Method: the method of `factory(loss_fn, example,
  config)` (a method module's `method`) with the fields of `hparams` traced
  (`with_values`): what `tuned` and `engine.train_and_evaluate_grid` take."""
  return lambda hparams: factory(loss_fn, example,
                                 with_values(config, hparams))


def tuned(build: Callable[[dict[str, chex.Array]], Method]) -> Method:
  """The `Method` over `Tuned` states of `build(hparams) -> Method`: update
  and params_of rebuild the method from the state's hparams (inside the
  compiled call: the hyper-parameters are traced). Its `init` takes the
  hparams too: init(params, key, hparams) -> Tuned."""

  def init(params, key, hparams):
    return Tuned(hparams, build(hparams).init(params, key))

  def update(state, batch, key):
    new, metrics = build(state.hparams).update(state.state, batch, key)
    return Tuned(state.hparams, new), metrics

  def params_of(state):
    return build(state.hparams).params_of(state.state)

  return Method(init=init, update=update, params_of=params_of)


def stack(settings: Sequence[dict[str, float]]) -> dict[str, chex.Array]:
  """G settings' {field: float} dicts (the same fields) as {field: [G]}
  float32 arrays.

  Raises:
    ValueError: no settings, or settings that set different fields.
  """
  if not settings:
    raise ValueError('a grid needs at least one setting')
  names = sorted(settings[0])
  for s in settings:
    if sorted(s) != names:
      raise ValueError(f'every setting of a grid sets the same fields; got '
                       f'{sorted(s)} and {names}')
  return {n: jnp.asarray([s[n] for s in settings], jnp.float32)
          for n in names}


def init_states(method: Method, hparams: dict[str, chex.Array],
                params: chex.ArrayTree, key: chex.PRNGKey,
                num_seeds: int) -> Tuned:
  """The `Tuned` states of G settings x S seeds, leaves [G, S, ...].

  Args:
    method: `tuned(build)`.
    hparams: {field: [G]}.
    params: every seed's initial parameters, [S, ...] (shared by the
      settings, as each setting's solo run starts from them).
    key: [S] init keys.
    num_seeds: S.
  """

  def one_setting(hp):
    per_seed = {k: jnp.broadcast_to(v, (num_seeds,)) for k, v in hp.items()}
    return jax.vmap(method.init)(params, key, per_seed)

  return jax.vmap(one_setting)(hparams)
