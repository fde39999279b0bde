r"""Training cost of EMCL against fine-tuning on the same stream, one process.

  python experiments/cost.py --dataset=mnist_permutations --repeats=3

Fine-tuning runs over exactly EMCL's inner stream (same memory size, replay
samples per batch and glances), so the ratio is what EMCL's importance,
proximal step and closed-form meta-update cost on top of the per-sample
gradient steps. Prints one line per run and the median ratio; `--output`
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
flags.DEFINE_string('output', None, 'Optional JSON file for the numbers.')


def main(argv):
  del argv
  logging.set_verbosity(logging.ERROR)
  emcl_config = experiment.method_config(FLAGS.dataset, 'emcl', {})
  stream = dict(memory_size=emcl_config.memory_size,
                replay_size=emcl_config.replay_size,
                glances=emcl_config.glances)
  seconds = {'emcl': [], 'finetune': []}
  for _ in range(FLAGS.repeats):
    for method, overrides in (('emcl', {}), ('finetune', stream)):
      res = experiment.run(FLAGS.dataset, method, FLAGS.seed,
                           overrides=overrides)
      seconds[method].append(res['train_seconds'])
      print(f'{method:9s} train_s={res["train_seconds"]:.3f} '
            f'ACC={res["acc"]:.2f}', flush=True)
  med = {m: statistics.median(s) for m, s in seconds.items()}
  ratio = med['emcl'] / med['finetune']
  print(f'median train seconds: emcl {med["emcl"]:.3f}, finetune (same '
        f'stream) {med["finetune"]:.3f}, ratio {ratio:.2f}')
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      json.dump({'dataset': FLAGS.dataset, 'stream': stream,
                 'seconds': seconds, 'median': med, 'ratio': ratio}, f,
                indent=1)


if __name__ == '__main__':
  app.run(main)
