"""One job run by submitit (`launcher.submit`): `runner.sweep` on the
pickled run configs, for one shard of the programs. It imports submitit,
so only the launcher imports it, when it submits.

A job preempted or timed out on SLURM is requeued by submitit with the same
call (`submitit.helpers.Checkpointable`): finished runs are skipped,
unfinished solo runs resume from their per-task checkpoints, and a grid
program starts again.
"""

from typing import Any, Optional, Sequence

import submitit

from emcl_jax.errors import DataError, NonFiniteLossError


class SweepJob(submitit.helpers.Checkpointable):
  """Calls `runner.sweep(run_configs, root, shard=shard, **kwargs)`;
  returns None, or the library error it raised (bad input, bad data, a
  diverged loss, an unwritable folder), which the launcher raises again.
  Requeued as it is (the base class's `checkpoint`)."""

  def __init__(self, run_configs: Sequence[Any], root: str,
               kwargs: dict[str, Any], shard: tuple[int, int]):
    self.run_configs, self.root = list(run_configs), root
    self.kwargs, self.shard = dict(kwargs), shard

  def __call__(self) -> Optional[BaseException]:
    from emcl_jax import runner  # pylint: disable=g-import-not-at-top
    try:
      runner.sweep(self.run_configs, self.root, shard=self.shard,
                       **self.kwargs)
    except (ValueError, DataError, NonFiniteLossError, OSError) as e:
      return e
    return None
