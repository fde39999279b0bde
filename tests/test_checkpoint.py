"""Checkpoint and resume: a resumed run equals the uninterrupted one bitwise
(on the CPU); mismatched, corrupt and half-written checkpoints."""

import glob
import os

from absl.testing import absltest
import pytest
import numpy as np

import fixtures
import runs
from emcl_jax import data
from emcl_jax.training.checkpoint import CheckpointError

pytestmark = pytest.mark.slow  # whole-protocol runs

SMALL = {'data.num_tasks': 4, 'data.samples_per_task': 60}


class Kill(Exception):
  """Stands in for the process dying after a task was logged."""


def _killed_after(task):
  """A record_fn that dies when task `task` (counting from 1) is reported."""
  def record_fn(record):
    if record.task + 1 == task:
      raise Kill()
  return record_fn


class CheckpointTest(absltest.TestCase):

  def _resume_equals_uninterrupted(self, run, kill_after):
    folder = fixtures.tmp_dir(self)
    full = run()
    with self.assertRaises(Kill):
      run(checkpoint_dir=folder, record_fn=_killed_after(kill_after))
    resumed = run(checkpoint_dir=folder, resume=True)
    for a, b in zip(full, resumed):
      self.assertEqual(a['accuracy_matrix'], b['accuracy_matrix'])
      self.assertEqual(a['task_losses'], b['task_losses'])
      self.assertEqual(a['acc'], b['acc'])
    return folder

  def test_resume_equals_uninterrupted_run(self):
    # Killed while logging task 3: tasks 1-2 are saved, 3-4 are retrained.
    for method in ('emcl', 'gem'):
      run = lambda method=method, **kw: [runs.run(  # noqa: E731
          'mnist_permutations', method, 1, SMALL, **kw)]
      self._resume_equals_uninterrupted(run, kill_after=3)

  def test_resume_of_vmapped_seeds(self):
    run = lambda **kw: runs.run_seeds(  # noqa: E731
        'mnist_permutations', 'emcl', (1, 2), SMALL, **kw)
    self._resume_equals_uninterrupted(run, kill_after=2)

  def test_resume_with_overlapped_evaluation(self):
    # Evaluation on its second thread: the pending evaluations are logged
    # before each save, so a run killed while logging task 2 and resumed
    # (both overlapped) equals a serial, uninterrupted run.
    serial = lambda overrides=SMALL, **kw: [runs.run(  # noqa: E731
        'mnist_permutations', 'emcl', 0, overrides, **kw)]
    overlapped = lambda **kw: serial(  # noqa: E731
        {**SMALL, 'output.overlap_eval': True}, **kw)
    folder = fixtures.tmp_dir(self)
    with self.assertRaises(Kill):
      overlapped(checkpoint_dir=folder, record_fn=_killed_after(2))
    resumed = overlapped(checkpoint_dir=folder, resume=True)[0]
    full = serial()[0]
    self.assertEqual(full['accuracy_matrix'], resumed['accuracy_matrix'])
    self.assertEqual(full['task_losses'], resumed['task_losses'])

  def test_other_data_is_refused(self):
    # Same benchmark, shapes and settings, one pixel of the stream changed:
    # the data checksum in the fingerprint refuses the resume.
    tasks = data.load('mnist_permutations', num_tasks=4, samples_per_task=60)
    folder = fixtures.tmp_dir(self)
    runs.run('mnist_permutations', 'emcl', 0, tasks=tasks,
                   checkpoint_dir=folder)
    train_x = tasks.train_x.copy()
    train_x[2, 5, 100] += 1  # uint8 or float: another value either way
    with self.assertRaisesRegex(CheckpointError,
                                r'another run \(data: \S+ -> \S+\)'):
      runs.run('mnist_permutations', 'emcl', 0,
                     tasks=tasks._replace(train_x=train_x),
                     checkpoint_dir=folder, resume=True)

  def test_finished_run_resumes_to_the_same_results(self):
    folder = fixtures.tmp_dir(self)
    first = runs.run('mnist_permutations', 'emcl', 0, SMALL,
                           checkpoint_dir=folder)
    again = runs.run('mnist_permutations', 'emcl', 0, SMALL,
                           checkpoint_dir=folder, resume=True)
    self.assertEqual(first['accuracy_matrix'], again['accuracy_matrix'])
    # Nothing retrained: the saved per-task seconds come back as they were.
    self.assertEqual(first['task_train_seconds'],
                     again['task_train_seconds'])

  def test_refusals(self):
    folder = fixtures.tmp_dir(self)
    runs.run('mnist_permutations', 'emcl', 0, SMALL,
                   checkpoint_dir=folder)
    with self.assertRaisesRegex(CheckpointError, r'resume it \(resume=True\)'):
      runs.run('mnist_permutations', 'emcl', 0, SMALL,
                     checkpoint_dir=folder)
    with self.assertRaisesRegex(CheckpointError,
                                r'another run \(config.beta: 0.1 -> 0.05\)'):
      # 0.1: MNIST Permutations' EMCL beta (emcl_jax/configs/).
      runs.run('mnist_permutations', 'emcl', 0,
                     {**SMALL, 'method.beta': 0.05},
                     checkpoint_dir=folder, resume=True)
    with self.assertRaisesRegex(CheckpointError, r'another run \(seeds'):
      runs.run('mnist_permutations', 'emcl', 1, SMALL,
                     checkpoint_dir=folder, resume=True)
    with self.assertRaisesRegex(ValueError, 'resume=True needs checkpoint_dir'):
      runs.run('mnist_permutations', 'emcl', 0, SMALL, resume=True)

  def test_corrupt_checkpoint_is_refused(self):
    folder = fixtures.tmp_dir(self)
    runs.run('mnist_permutations', 'emcl', 0, SMALL,
                   checkpoint_dir=folder)
    for path in glob.glob(os.path.join(folder, '3', 'arrays', '**', 'd', '*'),
                          recursive=True):
      with open(path, 'r+b') as f:
        f.truncate(16)
    with self.assertRaisesRegex(CheckpointError,
                                'cannot read the checkpoint of task 4'):
      runs.run('mnist_permutations', 'emcl', 0, SMALL,
                     checkpoint_dir=folder, resume=True)

  def test_half_written_save_is_ignored(self):
    # A kill during a save leaves orbax's temporary folder, never a step
    # folder: the run resumes from the last complete step.
    folder = fixtures.tmp_dir(self)
    with self.assertRaises(Kill):
      runs.run('mnist_permutations', 'emcl', 0, SMALL,
                     checkpoint_dir=folder, record_fn=_killed_after(3))
    self.assertEqual(sorted(os.listdir(folder)), ['0', '1'])
    os.makedirs(os.path.join(folder, '2.orbax-checkpoint-tmp-123', 'arrays'))
    with open(os.path.join(folder, '2.orbax-checkpoint-tmp-123', 'arrays',
                           'junk'), 'w') as f:
      f.write('half')
    resumed = runs.run('mnist_permutations', 'emcl', 0, SMALL,
                             checkpoint_dir=folder, resume=True)
    full = runs.run('mnist_permutations', 'emcl', 0, SMALL)
    np.testing.assert_array_equal(resumed['accuracy_matrix'],
                                  full['accuracy_matrix'])


if __name__ == '__main__':
  absltest.main()
