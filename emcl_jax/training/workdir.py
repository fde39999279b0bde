"""The work directory: one folder per run, keyed by what made it.

A run is (dataset, run name, config hash, seed) and lives in

  {workdir}/{dataset}/{name}/{config_hash}/seed{seed}/
    config.json     the run's config (written when it starts)
    results.json    the results (written atomically when it ends)
    metrics.jsonl   one record per task (`reporting.writers`), also
    metrics.csv     as CSV
    events.*        TensorBoard events (with tensorboard=True)
    checkpoints/    orbax saves after every task; removed once results.json
                    is written
    .lock           while a process runs it (`RunLock`)

Seeds trained together as one vmapped program share one checkpoint folder,
`{workdir}/{dataset}/{name}/{config_hash}/checkpoints/seeds{a}-{b}/`.

The config hash is a digest of (dataset, method, config), where config is
the `config` entry of the results (every hyper-parameter, the benchmark's
size, batch size, model, class order and data source), so runs with other
settings never share a folder, and a results file's hash can be computed
from the file alone (old flat results files too).

Only process 0 of a multi-host run writes (`is_primary`).
"""

import fcntl
import hashlib
import json
import os
import shutil
from typing import Any, Optional, Sequence

import jax

from emcl_jax.files import write_json  # noqa: F401  (re-exported)

CONFIG = 'config.json'
RESULTS = 'results.json'
METRICS = 'metrics.jsonl'
METRICS_CSV = 'metrics.csv'
CHECKPOINTS = 'checkpoints'
LOCK = '.lock'


def config_hash(dataset: str, method: str, config: dict[str, Any]) -> str:
  """A 10-hex-digit SHA-256 of (dataset, method, config), JSON-canonical."""
  blob = json.dumps({'dataset': dataset, 'method': method, 'config': config},
                    sort_keys=True, default=str)
  return hashlib.sha256(blob.encode()).hexdigest()[:10]


def results_hash(results: dict[str, Any]) -> str:
  """The config hash of a results dictionary (recorded or recomputed; a
  dictionary without a config hashes as an empty one)."""
  return results.get('config_hash') or config_hash(
      results.get('dataset', ''), results.get('method', ''),
      results.get('config', {}))


def setting_dir(workdir: str, dataset: str, name: str, chash: str) -> str:
  """The folder of every seed of one setting."""
  return os.path.join(workdir, dataset, name, chash)


def run_dir(workdir: str, dataset: str, name: str, chash: str,
            seed: int) -> str:
  """The folder of one run."""
  return os.path.join(setting_dir(workdir, dataset, name, chash),
                      f'seed{seed}')


def checkpoint_dir(workdir: str, dataset: str, name: str, chash: str,
                   seeds: Sequence[int]) -> str:
  """Where the runs of `seeds`, trained together, save their progress."""
  seeds = list(seeds)
  if len(seeds) == 1:
    return os.path.join(run_dir(workdir, dataset, name, chash, seeds[0]),
                        CHECKPOINTS)
  return os.path.join(setting_dir(workdir, dataset, name, chash),
                      CHECKPOINTS, f'seeds{seeds[0]}-{seeds[-1]}')


def latest_checkpoint(directory: str) -> Optional[int]:
  """The latest complete orbax step in `directory` (tasks 0..step done), or
  None (orbax names finished steps by their number; a save cut short leaves
  a temporary folder, ignored here)."""
  if not os.path.isdir(directory):
    return None
  steps = [int(n) for n in os.listdir(directory) if n.isdigit()]
  return max(steps) if steps else None


class RunLockedError(ValueError):
  """Another process holds the run folder's lock (it is running that run)."""


class RunLock:
  """An exclusive lock on a run folder while its run trains, so that two
  processes started on one work directory cannot interleave one run: the
  second is refused. It is an advisory `flock` on `{folder}/.lock`, which
  the kernel releases when the process ends, however it ends (a SIGKILLed
  run does not leave its folder locked)."""

  def __init__(self, folder: str):
    self.folder, self.path, self._fd = folder, os.path.join(folder, LOCK), None

  def acquire(self) -> 'RunLock':
    """Takes the lock, or raises RunLockedError (one line)."""
    os.makedirs(self.folder, exist_ok=True)
    fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
      os.close(fd)
      raise RunLockedError(f'{self.folder} is being run by another process '
                           f'(it holds {self.path}); wait for it to finish, '
                           'or use another folder') from None
    self._fd = fd
    return self

  def release(self) -> None:
    """Removes the lock file and releases the lock. (A process that opened
    the file just before sees the run's state after taking the lock, which
    is why `runner.run_in_workdir` looks for results only then.)"""
    if self._fd is None:
      return
    if os.path.exists(self.path):
      os.remove(self.path)
    fcntl.flock(self._fd, fcntl.LOCK_UN)
    os.close(self._fd)
    self._fd = None


def is_primary() -> bool:
  """Whether this process writes files (process 0 of a multi-host run)."""
  return jax.process_index() == 0


def read_json(path: str, what: str = 'results file') -> dict[str, Any]:
  """A JSON object from `path`.

  Raises:
    ValueError: one line naming the file when it cannot be read or is not
      a JSON object.
  """
  try:
    with open(path) as f:
      value = json.load(f)
  except (OSError, ValueError) as e:
    raise ValueError(f'{path} is not a readable {what} ({e}); delete it to '
                     'run it again') from None
  if not isinstance(value, dict):
    raise ValueError(f'{path} is not a readable {what} (not a JSON object); '
                     'delete it to run it again')
  return value


def remove_progress(folder: str) -> None:
  """Removes a run's checkpoints and metrics (a run started over)."""
  for name in (CHECKPOINTS, METRICS, METRICS_CSV):
    path = os.path.join(folder, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)
  for name in os.listdir(folder) if os.path.isdir(folder) else ():
    if 'tfevents' in name:
      os.remove(os.path.join(folder, name))


def find_results(root: str) -> list[str]:
  """Every results file under `root`, sorted: the tree's `results.json`
  files and any other `*.json` but `config.json` (the flat
  `{dataset}_{name}_seed{s}.json` files of the layout before the work
  directory)."""
  found = []
  for folder, dirs, files in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d != CHECKPOINTS)
    for f in files:
      if f.endswith('.json') and f != CONFIG and not f.startswith('.'):
        found.append(os.path.join(folder, f))
  return sorted(found)
