r"""What a grid of settings costs as one program against one program per
setting, measured in one script run (docs/speed.md, "A grid of settings").

  python experiments/grid_cost.py                       # 16 settings x 5 seeds
  python experiments/grid_cost.py --betas=0.05,0.1 --rs=0.05 --seeds=2 \
      --config.data.num_tasks=2 --config.data.samples_per_task=50

The settings are EMCL's beta x r (--betas x --rs) on --dataset, --seeds
seeds each. Two child processes, one after the other, each with the host's
cores as JAX devices (--devices, default: every core): `grouped` runs the
settings as grid programs (`runner.programs`, at most
--group_size settings each, `runner.run_grid`), `apart` runs them one
5-seed program after another (`runner.run`), as `sweep.py
--batch_settings=false` does. Each reports its wall time from its first
setting to its last result, compilation included, and its peak resident
memory (and the device allocator's peak where there is one). Prints both,
their ratio and whether each setting's ACC agrees; --output writes JSON.
"""

import json
import os
import subprocess
import sys
import time

from absl import flags
from absl import logging
import numpy as np

from emcl_jax import configs
from emcl_jax import runner
from emcl_jax import files
from emcl_jax.launch import cli

FLAGS = flags.FLAGS
SCRIPT = cli.register('grid_cost',
            own=('betas', 'rs', 'devices', 'mode', 'output'),
            shared=('dataset', 'seed', 'seeds', 'group_size', 'config',
                    'print_config'),
            defaults={'seeds': 5})
# --dataset, --seed, --seeds, --group_size, --config and --config.PATH=VALUE
# are the launch scripts' own (emcl_jax/launch/options.py).
flags.DEFINE_list('betas', ['0.03', '0.05', '0.1', '0.2'], "EMCL's beta "
                  'values (Eq 6 step).')
flags.DEFINE_list('rs', ['0.05', '0.1', '0.2', '0.3'], "EMCL's r values "
                  '(Eq 6 proximal radius).')
flags.DEFINE_integer('devices', None, 'JAX CPU devices of each child '
                     '(default: the cores, os.cpu_count()).', lower_bound=1)
flags.DEFINE_enum('mode', None, ['grouped', 'apart'], 'Run one mode in this '
                  'process (what the children do) and print its JSON.')


def settings() -> list[configs.RunConfig]:
  """The resolved run configs of the beta x r grid (5 seeds unless
  --seeds)."""
  return [cli.run_config(FLAGS.dataset, 'emcl', {
      'output.progress': False, 'method.beta': float(b),
      'method.r': float(r)}) for b in FLAGS.betas for r in FLAGS.rs]


def run_mode(mode: str) -> dict:
  """Trains every setting in `mode` and returns its cost and accuracies."""
  run_configs = settings()
  start = time.perf_counter()
  if mode == 'grouped':
    acc = [None] * len(run_configs)
    for group in runner.programs(run_configs,
                                     group_size=FLAGS.group_size):
      for i, runs in zip(group, runner.run_grid(
          [run_configs[i] for i in group])):
        acc[i] = None if runs is None else [r['acc'] for r in runs]
  else:
    acc = [[r['acc'] for r in runner.run(c)] for c in run_configs]
  wall = time.perf_counter() - start
  import jax  # pylint: disable=g-import-not-at-top
  return {'mode': mode, 'wall_seconds': wall, 'acc': acc,
          'devices': jax.device_count(), **runner.peak_memory()}


def child(mode: str, devices: int) -> dict:
  """Runs `mode` in a fresh process with `devices` CPU devices."""
  flags_env = os.environ.get('XLA_FLAGS', '')
  env = dict(os.environ, XLA_FLAGS=(
      f'{flags_env} --xla_force_host_platform_device_count={devices}'
      ).strip())
  argv = [a for a in sys.argv[1:] if not a.startswith(('--mode', '--output'))]
  proc = subprocess.run([sys.executable, sys.argv[0], *argv,
                         f'--mode={mode}'], capture_output=True, text=True,
                        env=env, check=False)
  if proc.returncode:
    cli.fail(f'the {mode} run failed: '
             f'{(proc.stderr.strip().splitlines() or ["no output"])[-1]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


def report(grouped: dict, apart: dict, num_settings: int,
           num_seeds: int) -> dict:
  """The comparison of the two modes (ratio, ACC agreement)."""
  diffs = [abs(np.mean(a) - np.mean(b)) for a, b in
           zip(grouped['acc'], apart['acc']) if a is not None and b]
  return {'settings': num_settings, 'seeds': num_seeds,
          'grouped': grouped, 'apart': apart,
          'ratio': grouped['wall_seconds'] / apart['wall_seconds'],
          'max_mean_acc_difference': float(max(diffs)) if diffs else None}


def main(argv):
  """Runs one --mode and prints its JSON, or both modes in children and
  prints (and writes to --output) their comparison."""
  del argv  # the parser refused any argument left over
  logging.set_verbosity(logging.ERROR)
  with cli.failing():
    run_configs = settings()
  if FLAGS.print_config:
    for config in run_configs:
      print(f'# beta={config.method.beta} r={config.method.r}')
      cli.print_config(config)
    return
  if FLAGS.mode:
    print(json.dumps(run_mode(FLAGS.mode)))
    return
  devices = FLAGS.devices or os.cpu_count() or 1
  grouped = child('grouped', devices)
  apart = child('apart', devices)
  out = report(grouped, apart, len(run_configs), run_configs[0].seeds)
  mib = lambda d: d['peak_rss_bytes'] / 2**20  # noqa: E731
  print(f"{out['settings']} settings x {out['seeds']} seeds on "
        f"{devices} CPU devices: grouped {grouped['wall_seconds']:.1f} s "
        f"(peak RSS {mib(grouped):.0f} MiB), apart "
        f"{apart['wall_seconds']:.1f} s (peak RSS {mib(apart):.0f} MiB); "
        f"grouped/apart = {out['ratio']:.2f}; largest difference of a "
        f"setting's mean ACC: {out['max_mean_acc_difference']:.2f}")
  if FLAGS.output:
    files.write_json(FLAGS.output, out)


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
