r"""Training cost of EMCL against a baseline, alternating runs in one process
(paper Fig. 2's claim: EMCL trains faster than La-MAML).

  python experiments/cost.py --dataset=mnist_permutations --repeats=3
  python experiments/cost.py --baseline=lamaml --repeats=3   # Fig. 2's claim

With the default `--baseline=finetune`, fine-tuning runs over exactly EMCL's
inner stream (same memory size, replay samples per batch and glances), so the
ratio is what EMCL's importance, proximal step and closed-form meta-update
cost on top of the per-sample gradient steps. Any other method runs with its
Table II defaults. Prints one line per run and the median ratio; `--output`
writes them as JSON.
"""

import json
import os
import statistics

from absl import flags
from absl import logging

from emcl_jax import experiment
from emcl_jax.launch import cli
from emcl_jax.launch import timing

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations', 'Benchmark.')
flags.DEFINE_integer('repeats', 3, 'Runs of each method (alternating).')
flags.DEFINE_string('baseline', 'finetune', 'finetune (on EMCL\'s stream) '
                    'or any method name (its Table II defaults).')
flags.DEFINE_string('output', None, 'Optional JSON file for the numbers.')


def main(argv):
  del argv  # cli.parse_flags refused any argument left over
  logging.set_verbosity(logging.ERROR)
  if FLAGS.repeats < 1:
    cli.fail(f'--repeats must be >= 1, got {FLAGS.repeats}')
  base = FLAGS.baseline
  sizes = dict(num_tasks=FLAGS.num_tasks,
               samples_per_task=FLAGS.samples_per_task)
  seconds, accs = {'emcl': [], base: []}, {'emcl': [], base: []}
  with cli.failing():
    stream = (timing.floor_overrides(FLAGS.dataset) if base == 'finetune'
              else {})
    runs = {'emcl': cli.run_config(FLAGS.dataset, 'emcl', {'seeds': 1}),
            base: cli.run_config(FLAGS.dataset, base, {'seeds': 1, **stream})}
    for _ in range(FLAGS.repeats):
      for method, config in runs.items():
        res = experiment.run(config)[0]
        seconds[method].append(res['train_seconds'])
        accs[method].append(res['acc'])
        print(f'{method:9s} train_s={res["train_seconds"]:.3f} '
              f'ACC={res["acc"]:.2f}', flush=True)
  med = {m: statistics.median(s) for m, s in seconds.items()}
  ratio = med['emcl'] / med[base]
  label = f'{base} (same stream)' if stream else base
  print(f'median train seconds: emcl {med["emcl"]:.3f}, {label} '
        f'{med[base]:.3f}, ratio {ratio:.2f}')
  if FLAGS.output:
    tmp = FLAGS.output + '.tmp'
    try:
      with open(tmp, 'w') as f:
        json.dump({'dataset': FLAGS.dataset, 'baseline': base,
                   'stream': stream, 'sizes': sizes, 'seconds': seconds,
                   'acc': accs, 'median': med, 'ratio': ratio}, f, indent=1)
      os.replace(tmp, FLAGS.output)
    except OSError as e:
      cli.fail(f'cannot write {FLAGS.output}: {e.strerror or e}; choose a '
               'writable --output')


def entry():
  """`python experiments/cost.py`."""
  cli.start(main, __doc__, __name__)
