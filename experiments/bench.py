r"""Speed benchmark: every method against the cost floor, in one process.

  python experiments/bench.py --output=bench.json          # MLP, MNIST perms
  python experiments/bench.py --methods=emcl,lamaml --timed_tasks=2

The floor is fine-tuning over exactly EMCL's inner stream: the same
per-sample gradient steps on the incoming batch plus its replay samples, with
nothing else (`finetune` with EMCL's memory_size, replay_size and glances).
For each (dataset, model, method) the training call of one task (the whole
task's batch stream, one jitted `lax.scan`) is compiled, warmed up once,
then timed on the first `--timed_tasks` tasks with `block_until_ready`;
the median gives microseconds per incoming stream sample. Also measured:
compile seconds, XLA's memory estimate of the compiled call (arguments,
outputs and temporaries) and the process's peak resident memory so far.

Then, on the first dataset and model:
  scaling_tasks   per-task time over the whole stream (cost per sample
                  against the task index) for the floor, EMCL, GEM, A-GEM;
  scaling_width   the floor and EMCL on MLPs of other widths;
  scaling_seeds   the floor and EMCL with S seeds vmapped in one call;
  protocol        the full protocol with EMCL (training plus evaluation of
                  every task after every task), steady state, evaluation
                  serial and overlapped with training: the faster mode's
                  median over `--protocol_repeats` runs is
                  `protocol_seconds`; evaluation's share of the serial one.

`--output=FILE` writes everything as JSON with two top-level figures:
`emcl_over_floor` (EMCL's per-sample time over the floor's, first dataset
and model: the median ratio over `--rounds` alternating rounds of the two,
`head_to_head`, so that a drift of the machine's speed hits both alike)
and `protocol_seconds`.
"""

import json
import os
from typing import Any, Optional

from absl import flags
from absl import logging
import jax
import numpy as np

from emcl_jax import runner
from emcl_jax import files
from emcl_jax import models
from emcl_jax.launch import cli
from emcl_jax.methods import RECORDS
import timing  # experiments/timing.py, beside this script

FLAGS = flags.FLAGS
# --datasets (benchmarks whose stream shapes are timed), --methods
# ('all': every method except joint) and the run flags are the launch
# scripts' own (emcl_jax/launch/options.py).
flags.DEFINE_list('models', ['mlp'], 'Models: mlp, resnet18_reduced.')
flags.DEFINE_integer('timed_tasks', 3, 'Tasks timed per method after the '
                     'warm-up task (the median is reported).')
flags.DEFINE_list('widths', ['100', '200', '400'], 'MLP widths for the '
                  'width scaling.')
flags.DEFINE_list('seed_counts', ['1', '2', '4'], 'Seeds in parallel '
                  '(vmapped) for the seed scaling.')
flags.DEFINE_list('scaling_methods', ['floor', 'emcl', 'gem', 'agem'],
                  'Methods timed on every task for the task scaling.')
flags.DEFINE_integer('protocol_repeats', 3, 'Full-protocol EMCL runs.')
flags.DEFINE_integer('rounds', 7, 'Alternating floor/EMCL rounds of '
                     '--timed_tasks tasks for emcl_over_floor (0: take it '
                     'from the table).')
flags.DEFINE_bool('scaling', True, 'Run the scaling and protocol sections.')

FLOOR = 'floor'
OWN = ('models', 'timed_tasks', 'widths', 'seed_counts', 'scaling_methods',
       'protocol_repeats', 'rounds', 'scaling', 'output')
SCRIPT = cli.register('bench', own=OWN,
                      shared=('datasets', 'methods', 'seed', 'data_dir',
                              'config', 'print_config'),
                      defaults={'methods': ['all']})


def model_fn(name: str, width: Optional[int] = None):
  """num_classes -> flax module, for `runner.setup` (`width`: the MLP's
  hidden sizes)."""
  if name not in models.MODELS:
    cli.fail(f'unknown model {name!r}; use one of '
             f'{", ".join(models.MODELS)}')
  if name == 'mlp' and width:
    return lambda n: models.MLP(hidden=(width, width), num_classes=n)
  return lambda n: models.make(name, n)


def build(dataset: str, method: str, model: str, *,
          width: Optional[int] = None) -> runner.Setup:
  """The run's setup (seed --seed; the command line's settings, the timed
  `model`); `method` may be 'floor'."""
  config = config_of(dataset, method)
  return runner.setup(config, config.seed,
                          model_fn=model_fn(model, width))


def config_of(dataset: str, method: str) -> Any:
  """The run config of `method` (or 'floor') on `dataset`, as the command
  line sets it."""
  extra = timing.floor_overrides(dataset) if method == FLOOR else {}
  return cli.run_config(dataset, 'finetune' if method == FLOOR else method,
                        {'seeds': 1, **extra})


def peak_rss_mib() -> float:
  """Peak resident memory of this process so far, MiB."""
  return runner.peak_rss_bytes() / 2**20


def time_method(dataset: str, method: str, model: str, *, timed_tasks: int,
                width: Optional[int] = None, seeds: int = 0,
                all_tasks: bool = False) -> dict[str, Any]:
  """`timing.time_method` of a fresh `Timer` for (dataset, method, model);
  `seeds` as `timing.Timer`."""
  timer = timing.Timer(build(dataset, method, model, width=width),
                       seeds=seeds)
  return timing.time_method(timer, timed_tasks, all_tasks=all_tasks)


def over_floor(us_per_sample: float, floor_us_per_sample: float) -> float:
  """A method's cost in units of the floor's (per stream sample)."""
  return us_per_sample / floor_us_per_sample


def methods_to_time() -> list[str]:
  """The methods of --methods, checked ('all': every method but joint)."""
  if FLAGS.methods == ['all']:
    return [m for m, r in RECORDS.items() if not r.joint]
  unknown = [m for m in FLAGS.methods if m not in RECORDS]
  if unknown:
    cli.fail(f'unknown method {unknown[0]!r}; use one of '
             f'{", ".join(RECORDS)}')
  return FLAGS.methods


def log(row: dict[str, Any]) -> None:
  """One JSON line per measurement, as it is made."""
  print(json.dumps(row), flush=True)


def time_table(methods: list[str]) -> list[dict[str, Any]]:
  """The floor and every method, per (dataset, model), with their cost
  over the floor's."""
  table = []
  for dataset in FLAGS.datasets:
    for model in FLAGS.models:
      floor = time_method(dataset, FLOOR, model,
                          timed_tasks=FLAGS.timed_tasks)
      for method in [FLOOR] + methods:
        res = floor if method == FLOOR else time_method(
            dataset, method, model, timed_tasks=FLAGS.timed_tasks)
        table.append({'dataset': dataset, 'model': model, 'method': method,
                      **res, 'over_floor': over_floor(
                          res['us_per_sample'], floor['us_per_sample'])})
        log(table[-1])
  return table


def headline(out: dict[str, Any]) -> None:
  """`emcl_over_floor`: the head-to-head median ratio, or the table's."""
  first = out['table'][0]
  if FLAGS.rounds:
    dataset, model = first['dataset'], first['model']
    out['head_to_head'] = timing.head_to_head(
        timing.Timer(build(dataset, FLOOR, model)),
        timing.Timer(build(dataset, 'emcl', model)), FLAGS.rounds,
        FLAGS.timed_tasks)
    out['emcl_over_floor'] = out['head_to_head']['emcl_over_floor']
    log({'head_to_head': out['head_to_head']['ratios'],
         'emcl_over_floor': out['emcl_over_floor']})
  else:
    emcl = [r for r in out['table'] if r['method'] == 'emcl'
            and r['dataset'] == first['dataset']
            and r['model'] == first['model']]
    out['emcl_over_floor'] = emcl[0]['over_floor'] if emcl else None


def scaling(out: dict[str, Any], dataset: str, model: str) -> None:
  """The task, width and seed scaling and the full protocol."""
  out['scaling_tasks'] = {}
  for method in FLAGS.scaling_methods:
    res = time_method(dataset, method, model, timed_tasks=0, all_tasks=True)
    per_task = [1e6 * s / res['samples_per_task']
                for s in res['task_seconds']]
    slope = float(np.polyfit(np.arange(len(per_task)), per_task, 1)[0])
    out['scaling_tasks'][method] = {'us_per_sample': per_task,
                                    'slope_us_per_task': slope}
    log({'scaling_tasks': method, 'first': per_task[0],
         'last': per_task[-1], 'slope': slope})
  out['scaling_width'] = {}
  for width in map(int, FLAGS.widths):
    row = {m: time_method(dataset, m, model, width=width,
                          timed_tasks=FLAGS.timed_tasks)['us_per_sample']
           for m in (FLOOR, 'emcl')}
    row['emcl_over_floor'] = over_floor(row['emcl'], row[FLOOR])
    out['scaling_width'][width] = row
    log({'width': width, **row})
  out['scaling_seeds'] = {}
  for seeds in map(int, FLAGS.seed_counts):
    row = {m: time_method(dataset, m, model, seeds=seeds,
                          timed_tasks=FLAGS.timed_tasks)['us_per_sample']
           for m in (FLOOR, 'emcl')}
    out['scaling_seeds'][seeds] = row
    log({'seeds': seeds, **row})
  out['protocol'] = timing.protocol(
      lambda: build(dataset, 'emcl', model), FLAGS.protocol_repeats)
  out['protocol_seconds'] = out['protocol']['seconds']
  log({'protocol_seconds': out['protocol_seconds'],
       'serial': out['protocol']['serial']['seconds'],
       'overlapped': out['protocol']['overlapped']['seconds'],
       'eval_share_serial': out['protocol']['serial']['eval_share']})


def main(argv):
  """Times the table, the headline ratio and the scaling sections; prints
  them and writes --output."""
  del argv  # the parser refused any argument left over
  logging.set_verbosity(logging.ERROR)
  methods = methods_to_time()
  if FLAGS.print_config:
    with cli.failing():
      for dataset in FLAGS.datasets:
        for method in [FLOOR, *methods]:
          print(f'# {dataset} {method}')
          cli.print_config(config_of(dataset, method))
    return
  out: dict[str, Any] = {'device': jax.default_backend(),
                         'cpu_count': os.cpu_count(),
                         'versions': runner.versions(), 'table': []}
  with cli.failing():
    out['table'] = time_table(methods)
    headline(out)
    if FLAGS.scaling:
      scaling(out, out['table'][0]['dataset'], out['table'][0]['model'])
  out['peak_rss_mib'] = peak_rss_mib()
  if FLAGS.output:
    try:
      files.write_json(FLAGS.output, out)
    except OSError as e:
      cli.fail(f'cannot write {FLAGS.output}: {e.strerror or e}; choose a '
               'writable --output')
  print(markdown(out), end='')


def markdown(out: dict[str, Any]) -> str:
  """The README's speed table of a bench result: one row per (dataset,
  model, method), then the headline figures."""
  lines = ['| dataset | model | method | us / sample | x floor | compile s '
           '| XLA memory MiB |', '| --- | --- | --- | --- | --- | --- | --- |']
  for r in out['table']:
    mem = ('-' if r['memory_bytes'] is None
           else f"{r['memory_bytes'] / 2**20:.1f}")
    lines.append(f"| {r['dataset']} | {r['model']} | {r['method']} "
                 f"| {r['us_per_sample']:.1f} | {r['over_floor']:.2f} "
                 f"| {r['compile_seconds']:.1f} | {mem} |")
  lines.append('')
  if out.get('emcl_over_floor') is not None:
    lines.append(f"emcl_over_floor: {out['emcl_over_floor']:.2f}")
  if 'protocol_seconds' in out:
    p = out['protocol']
    lines.append(f"protocol_seconds: {out['protocol_seconds']:.2f} (serial "
                 f"{p['serial']['seconds']:.2f}, evaluation share "
                 f"{p['serial']['eval_share']:.2f}; overlapped "
                 f"{p['overlapped']['seconds']:.2f})")
  for method, v in out.get('scaling_tasks', {}).items():
    lines.append(f'scaling_tasks {method}: {v["us_per_sample"][0]:.1f} -> '
                 f'{v["us_per_sample"][-1]:.1f} us / sample from the first '
                 f'to the last task, slope {v["slope_us_per_task"]:+.2f} '
                 'us / task')
  for width, v in out.get('scaling_width', {}).items():
    lines.append(f"scaling_width {width}: floor {v[FLOOR]:.1f}, emcl "
                 f"{v['emcl']:.1f} us / sample ({v['emcl_over_floor']:.2f}x)")
  for seeds, v in out.get('scaling_seeds', {}).items():
    lines.append(f"scaling_seeds {seeds}: floor {v[FLOOR]:.1f}, emcl "
                 f"{v['emcl']:.1f} us / sample (all seeds together)")
  return '\n'.join(lines) + '\n'


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
