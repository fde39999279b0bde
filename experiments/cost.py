r"""Training cost of EMCL against a baseline, alternating runs in one process.

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
import statistics

from absl import app
from absl import flags
from absl import logging

from emcl_jax import experiment

FLAGS = flags.FLAGS
flags.DEFINE_string('dataset', 'mnist_permutations', 'Benchmark.')
flags.DEFINE_integer('repeats', 3, 'Runs of each method (alternating).')
flags.DEFINE_integer('seed', 0, 'Seed.')
flags.DEFINE_string('baseline', 'finetune', 'finetune (on EMCL\'s stream) '
                    'or any method name (its Table II defaults).')
flags.DEFINE_string('output', None, 'Optional JSON file for the numbers.')


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  emcl_config = experiment.method_config(FLAGS.dataset, 'emcl', {})
  base = FLAGS.baseline
  stream = {}
  if base == 'finetune':
    stream = dict(memory_size=emcl_config.memory_size,
                  replay_size=emcl_config.replay_size,
                  glances=emcl_config.glances)
  try:
    experiment.method_config(FLAGS.dataset, base, stream)
  except ValueError as e:
    raise app.UsageError(str(e))
  seconds = {'emcl': [], base: []}
  accs = {'emcl': [], base: []}
  for _ in range(FLAGS.repeats):
    for method, overrides in (('emcl', {}), (base, stream)):
      res = experiment.run(FLAGS.dataset, method, FLAGS.seed,
                           overrides=overrides)
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
    with open(FLAGS.output, 'w') as f:
      json.dump({'dataset': FLAGS.dataset, 'baseline': base,
                 'stream': stream, 'seconds': seconds, 'acc': accs,
                 'median': med, 'ratio': ratio}, f, indent=1)


if __name__ == '__main__':
  app.run(main)
