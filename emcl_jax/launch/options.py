"""Every flag of the launch scripts, defined once (so that every launch
module imports beside every other), and which script takes which.

The flags only choose the run: the benchmark (`--dataset`), the method
(`--method`), the seeds (`--seed`, `--seeds`), the folders (`--workdir`,
`--data_dir`), a config file (`--config=FILE[:ARG]`), what a sweep or the
paper's report covers, and where the programs run. Every setting of the
run itself has one spelling, `--config.PATH=VALUE` (`cli`), listed by
`--help` and `--print_config`. A script's defaults that differ from the
others' (`--workdir`, the number of seeds) are set by the script when it
starts (`DEFAULTS`).
"""

from absl import flags

from emcl_jax import configs
from emcl_jax.methods import RECORDS

FLAGS = flags.FLAGS
LAUNCHERS = ('local', 'submitit_local', 'slurm')

# --- the run -----------------------------------------------------------------
flags.DEFINE_string('dataset', 'mnist_permutations',
                    ' | '.join(configs.BENCHMARKS))
flags.DEFINE_string('method', 'emcl', ' | '.join(RECORDS)
                    + ' (sweep.py: the method of settings that name none).')
flags.DEFINE_integer('seed', 0, 'The first seed (data draws, init, replay).')
flags.DEFINE_integer('seeds', 1, 'Number of seeds: seeds seed..seed+N-1.')
flags.DEFINE_string('workdir', 'runs', 'Work directory: the root of the run '
                    'folders, {workdir}/{dataset}/{name}/{config_hash}/'
                    'seed{seed}/.')
flags.DEFINE_string('data_dir', None, 'Folder with the data files (MNIST '
                    'IDX, cifar-100-python, mini-imagenet-cache-*.pkl or one '
                    'folder per class), or where a download goes; MNIST '
                    'default: the bundled subset. = --config.data.dir')
flags.DEFINE_string('config', None, 'FILE[:ARG]: a Python file whose '
                    'get_config(ARG) returns the run config (a RunConfig, '
                    "e.g. emcl_jax/configs/cifar100.py:lamaml); it chooses "
                    'the dataset and method in place of --dataset and '
                    '--method.')
flags.DEFINE_bool('print_config', False, 'Print every setting of the run '
                  '(value and meaning) and its config hash, then exit '
                  'without training or writing anything.')
flags.DEFINE_bool('parallel_seeds', True, "Run a setting's seeds as one "
                  'vmapped program sharded over the devices (timed '
                  'together); false: one after another, each timed alone.')

# --- sweep.py ----------------------------------------------------------------
flags.DEFINE_string('grid', None, "Settings: 'method.beta=0.03,0.1;"
                    "method.r=1 | method=lamaml'.")
flags.DEFINE_string('grid_file', None, 'Python file whose get_grid() '
                    "returns a list of dicts, one setting each: [{'method': "
                    "'lamaml'}, {'method.beta': 0.1}] (instead of --grid).")
flags.DEFINE_string('set', None, "Values for every setting, part of its "
                    "name: 'method.meta_clip=2.0;data.num_tasks=5'.")
flags.DEFINE_string('table', None, 'Where the Markdown table goes '
                    '(default {workdir}/{dataset}/table.md).')
flags.DEFINE_bool('batch_settings', True, 'Run settings that differ only in '
                  'numeric method settings as one program (hyper-parameters '
                  'traced); false: each setting on its own.')
flags.DEFINE_integer('group_size', 16, 'At most this many settings in one '
                     'program (--batch_settings).', lower_bound=1)

# --- reproduce.py ------------------------------------------------------------
flags.DEFINE_list('datasets', ['mnist_permutations'],
                  ', '.join(configs.BENCHMARKS))
flags.DEFINE_list('methods', ['emcl', 'lamaml', 'finetune'],
                  "Methods (run.py's names, Table IV's ablations emcl_gd, "
                  'emcl_lr_modulation, emcl_si among them).')

# --- sweep.py and reproduce.py -----------------------------------------------
flags.DEFINE_string('shard', None, 'i/n: run programs i, i+n, ... only (no '
                    'table).')
flags.DEFINE_bool('run', True, 'Run missing runs (false: the tables of the '
                  'finished runs only).')

# --- reproduce.py and summarize.py -------------------------------------------
flags.DEFINE_list('columns', None, 'Metrics to show, from acc, bwt, la, '
                  'fwt, forgetting, acc_class, bwt_class, val_acc (default: '
                  "the script's).")
flags.DEFINE_string('rank_by', None, 'Order the rows by this metric, best '
                    'first (val_acc: validation ACC, for runs with '
                    'data.validation); default: summarize, the order found; '
                    'the front, test ACC (acc).')

# --- the studies of experiments/ (bench.py, cost.py, grid_cost.py, front.py)
flags.DEFINE_string('output', None, "The file the study's numbers (JSON) or "
                    'report (Markdown) go to.')

# --- where programs run: submitit jobs (launcher.py) -------------------------
flags.DEFINE_enum('launcher', 'local', LAUNCHERS, 'local: the programs run '
                  'in this process | submitit_local: as --jobs submitit '
                  'jobs on this machine | slurm: as a SLURM job array '
                  "(submitit; pip install 'emcl_jax[cluster]').")
flags.DEFINE_integer('jobs', 0, 'Number of jobs (submitit launchers): job j '
                     'runs programs j, j+N, ...; 0: one job per program.',
                     lower_bound=0)
flags.DEFINE_bool('wait', True, 'Wait for the jobs, then write the table; '
                  'false: return once they are submitted (a later '
                  '--run=false command writes the table).')
flags.DEFINE_string('job_log_dir', None, "Folder of submitit's job files and "
                    'logs (default {workdir}/submitit).')
flags.DEFINE_integer('job_minutes', 24 * 60, 'Time limit of each job in '
                     'minutes (SLURM: --time; after it the job is '
                     'requeued and runs again).', lower_bound=1)
flags.DEFINE_integer('gpus_per_job', None, 'GPUs of each job (default: 1 '
                     'on slurm; 0 with submitit_local, whose jobs then '
                     'run on the CPU).', lower_bound=0)
flags.DEFINE_integer('cpus_per_job', None, 'CPUs of each job (SLURM '
                     "--cpus-per-task; default: the cluster's).",
                     lower_bound=1)
flags.DEFINE_string('slurm_partition', None, 'SLURM partition of the jobs.')
flags.DEFINE_string('slurm_account', None, 'SLURM account to charge.')
flags.DEFINE_string('slurm_qos', None, 'SLURM quality of service.')
flags.DEFINE_integer('slurm_array_parallelism', 256, 'At most this many '
                     'jobs of the array run at once.', lower_bound=1)

# --- several JAX processes (distributed.py) ----------------------------------
flags.DEFINE_string('coordinator_address', None, 'HOST:PORT of process 0, '
                    'which every process of a several-process run connects '
                    'to (the same on all; SLURM: read from its variables).')
flags.DEFINE_integer('num_processes', None, 'Number of JAX processes of '
                     'the run (with --coordinator_address).', lower_bound=1)
flags.DEFINE_integer('process_id', None, "This process's index, 0 .. "
                     '--num_processes - 1; process 0 writes the files.',
                     lower_bound=0)
flags.DEFINE_integer('join_timeout', 120, 'Seconds a process waits for '
                     'all processes to join (process 0 for the others, the '
                     'others for process 0); then every process ends with '
                     'one line and exit code 1.', lower_bound=1)

# Which flags each script takes (the others are refused), in --help order.
RUN = ('dataset', 'method', 'seed', 'seeds', 'workdir', 'data_dir', 'config',
       'print_config', 'parallel_seeds')
LAUNCHER = ('launcher', 'jobs', 'wait', 'job_log_dir', 'job_minutes',
            'gpus_per_job', 'cpus_per_job', 'slurm_partition',
            'slurm_account', 'slurm_qos', 'slurm_array_parallelism')
PROCESSES = ('coordinator_address', 'num_processes', 'process_id',
             'join_timeout')
SCRIPTS = {
    'run': RUN + PROCESSES,
    'sweep': (RUN + ('grid', 'grid_file', 'set', 'table', 'batch_settings',
                     'group_size', 'shard', 'run') + LAUNCHER + PROCESSES),
    'reproduce': (('datasets', 'methods') + RUN[2:] + ('columns', 'shard',
                                                       'run')
                  + LAUNCHER + PROCESSES),
    'summarize': ('workdir', 'columns', 'rank_by'),
}
# The script's own defaults where they differ from the flag's.
DEFAULTS = {
    'run': {'workdir': 'runs', 'seeds': 1},
    'sweep': {'workdir': 'sweeps', 'seeds': 5},
    'reproduce': {'workdir': 'reproduce', 'seeds': 5},
    'summarize': {'workdir': 'runs'},
}


def seeds() -> list[int]:
  """--seed..--seed+--seeds-1.

  Raises:
    ValueError: a negative --seed or --seeds < 1.
  """
  if FLAGS.seed < 0:
    raise ValueError(f'--seed must be >= 0, got {FLAGS.seed}')
  if FLAGS.seeds < 1:
    raise ValueError(f'--seeds must be >= 1, got {FLAGS.seeds}')
  return list(range(FLAGS.seed, FLAGS.seed + FLAGS.seeds))
