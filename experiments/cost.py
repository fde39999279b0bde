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

import statistics

from absl import flags
from absl import logging

from emcl_jax import runner
from emcl_jax import files
from emcl_jax.launch import cli
import timing  # experiments/timing.py, beside this script

FLAGS = flags.FLAGS
SCRIPT = cli.register('cost', own=('repeats', 'baseline', 'output'),
            shared=('dataset', 'seed', 'data_dir', 'config', 'print_config'))
# --dataset, --seed, --data_dir, --config and --config.PATH=VALUE are the
# launch scripts' own (emcl_jax/launch/options.py).
flags.DEFINE_integer('repeats', 3, 'Runs of each method (alternating).')
flags.DEFINE_string('baseline', 'finetune', 'finetune (on EMCL\'s stream) '
                    'or any method name (its Table II defaults).')


def main(argv):
  """Alternates EMCL's and the baseline's runs; prints each and the median
  ratio, and writes --output."""
  del argv  # the parser refused any argument left over
  logging.set_verbosity(logging.ERROR)
  if FLAGS.repeats < 1:
    cli.fail(f'--repeats must be >= 1, got {FLAGS.repeats}')
  base = FLAGS.baseline
  seconds, accs = {'emcl': [], base: []}, {'emcl': [], base: []}
  with cli.failing():
    stream = (timing.floor_overrides(FLAGS.dataset) if base == 'finetune'
              else {})
    runs = {'emcl': cli.run_config(FLAGS.dataset, 'emcl', {'seeds': 1}),
            base: cli.run_config(FLAGS.dataset, base, {'seeds': 1, **stream})}
    if FLAGS.print_config:
      for method, config in runs.items():
        print(f'# {method}')
        cli.print_config(config)
      return
    data = runs['emcl'].data
    sizes = dict(num_tasks=data.num_tasks,
                 samples_per_task=data.samples_per_task)
    for _ in range(FLAGS.repeats):
      for method, config in runs.items():
        res = runner.run(config)[0]
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
    try:
      files.write_json(FLAGS.output, {
          'dataset': FLAGS.dataset, 'baseline': base, 'stream': stream,
          'sizes': sizes, 'seconds': seconds, 'acc': accs, 'median': med,
          'ratio': ratio})
    except OSError as e:
      cli.fail(f'cannot write {FLAGS.output}: {e.strerror or e}; choose a '
               'writable --output')


if __name__ == '__main__':
  cli.start(main, __doc__, SCRIPT)
