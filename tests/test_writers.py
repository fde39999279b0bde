"""Metric writers (JSON lines, CSV, TensorBoard through tensorboardX, the
progress display) read back independently, and the progress reporter's
lines and rate limit."""

import csv
import io
import json
import os
import re
import time

from absl.testing import absltest
import numpy as np

import fixtures
from emcl_jax.reporting import progress as progress_lib
from emcl_jax.reporting import writers
from emcl_jax.training import engine


class FakeClock:
  """Returns the given times in order."""

  def __init__(self, *times):
    self.times = list(times)

  def __call__(self):
    return self.times.pop(0)


def _record(task, loss, accuracy):
  return engine.TaskRecord(task, 3, np.asarray(loss), np.asarray(accuracy),
                           train_seconds=0.5, eval_seconds=0.25)


class TaskScalarsTest(absltest.TestCase):

  def test_one_seed_by_hand(self):
    # After task 1 (0-based) of 3: acc_this = R[1, 1], acc_seen = mean of
    # R[1, 0..1], in percent.
    scalars = writers.task_scalars(_record(1, 0.75, [0.5, 0.9, 0.1]))
    self.assertEqual(scalars, {'loss': 0.75, 'acc_this': 90.0,
                               'acc_seen': 70.0, 'train_s': 0.5,
                               'eval_s': 0.25})

  def test_seed_axis_picks_or_averages(self):
    rec = _record(0, [1.0, 3.0], [[0.2, 0.0, 0.0], [0.6, 0.0, 0.0]])
    self.assertAlmostEqual(writers.task_scalars(rec, 1)['acc_this'], 60.0)
    self.assertEqual(writers.task_scalars(rec, 1)['loss'], 3.0)
    mean = writers.task_scalars(rec)
    self.assertAlmostEqual(mean['acc_this'], 40.0)
    self.assertEqual(mean['loss'], 2.0)


class JsonLinesTest(absltest.TestCase):

  def test_records_hparams_and_resume(self):
    path = os.path.join(fixtures.tmp_dir(self), 'sub', 'm.jsonl')
    w = writers.JsonLinesWriter(path)
    self.assertFalse(os.path.exists(path))  # made at the first write
    before = time.time()
    w.write_hparams({'beta': 0.1, 'method': 'emcl'})
    for step in (1, 2, 3):
      w.write_scalars(step, {'loss': np.float32(0.5) / step})
    self.assertLen(writers.read_json_lines(path), 4)  # flushed, not closed
    w.write_images(3, {'m': np.zeros((2, 2, 3), np.uint8)})  # not written
    w.close()
    with open(path) as f:
      raw = [json.loads(line) for line in f]
    self.assertEqual(raw[0], {'hparams': {'beta': 0.1, 'method': 'emcl'}})
    self.assertEqual([r['step'] for r in raw[1:]], [1, 2, 3])
    self.assertEqual(raw[2]['loss'], 0.25)
    for r in raw[1:]:
      self.assertBetween(r['wall_time'], before, time.time())
    # A resumed run keeps steps 1..2 and the hparams, and redoes step 3.
    w = writers.JsonLinesWriter(path, keep_steps=2)
    w.write_hparams({'beta': 0.1})  # written already: skipped
    w.write_scalars(3, {'loss': 9.0})
    w.close()
    raw = writers.read_json_lines(path)
    self.assertEqual([r.get('step') for r in raw], [None, 1, 2, 3])
    self.assertEqual(raw[3]['loss'], 9.0)
    # A new run (keep_steps None) starts the file afresh.
    w = writers.JsonLinesWriter(path)
    w.write_scalars(1, {'loss': 1.0})
    w.close()
    self.assertLen(writers.read_json_lines(path), 1)

  def test_reserved_keys(self):
    w = writers.JsonLinesWriter(os.path.join(
        fixtures.tmp_dir(self), 'x.jsonl'))
    for key in ('step', 'wall_time'):
      with self.assertRaisesRegex(ValueError, 'set by the writer'):
        w.write_scalars(1, {key: 1.0})


class CsvTest(absltest.TestCase):

  def test_rows_columns_and_resume(self):
    path = os.path.join(fixtures.tmp_dir(self), 'm.csv')
    w = writers.CsvWriter(path)
    w.write_scalars(1, {'loss': 0.5, 'acc': 80.0})
    w.write_scalars(2, {'acc': 90.0, 'extra': 1.0})  # 'extra': no column
    w.write_scalars(2, {'final/acc': 1.0})  # no column at all: no row
    w.close()
    with open(path) as f:
      rows = list(csv.reader(f))
    self.assertEqual(rows, [['step', 'loss', 'acc'], ['1', '0.5', '80.0'],
                            ['2', '', '90.0']])
    w = writers.CsvWriter(path, keep_steps=1)
    w.write_scalars(2, {'loss': 0.25, 'acc': 95.0})
    w.close()
    with open(path) as f:
      rows = list(csv.reader(f))
    self.assertEqual(rows, [['step', 'loss', 'acc'], ['1', '0.5', '80.0'],
                            ['2', '0.25', '95.0']])


class TensorBoardTest(absltest.TestCase):

  def test_scalars_hparams_and_image_read_back(self):
    logdir = fixtures.tmp_dir(self)
    w = writers.TensorBoardWriter(logdir, metrics=('final/acc',))
    w.write_hparams({'beta': 0.1, 'inner': 'pgd', 'memory_size': 200,
                     'data_dir': None})
    w.write_scalars(1, {'loss': 0.5})
    w.write_scalars(2, {'loss': 0.25, 'final/acc': 77.0})
    image = np.zeros((4, 6, 3), np.uint8)
    image[1, 2] = (255, 0, 0)
    w.write_images(2, {'accuracy_matrix': image})
    w.close()
    events = writers.read_events(logdir)
    scalars = [(e.step, v.tag, v.simple_value) for e in events
               for v in e.summary.value if v.HasField('simple_value')]
    self.assertEqual(scalars, [(1, 'loss', 0.5), (2, 'loss', 0.25),
                               (2, 'final/acc', 77.0)])
    plugins = {v.metadata.plugin_data.plugin_name for e in events
               for v in e.summary.value}
    self.assertIn('hparams', plugins)
    session = [v.metadata.plugin_data.content for e in events
               for v in e.summary.value if v.tag == '_hparams_/session_start_info']
    from tensorboardX.proto import plugin_hparams_pb2
    data = plugin_hparams_pb2.HParamsPluginData()
    data.ParseFromString(session[0])
    hp = data.session_start_info.hparams
    self.assertEqual(hp['beta'].number_value, 0.1)
    self.assertEqual(hp['inner'].string_value, 'pgd')
    self.assertEqual(hp['data_dir'].string_value, 'None')
    images = [v.image for e in events for v in e.summary.value
              if v.HasField('image')]
    self.assertLen(images, 1)
    self.assertEqual((images[0].height, images[0].width), (4, 6))
    # The PNG decodes back to the image (an independent decoder).
    from PIL import Image
    decoded = np.asarray(Image.open(io.BytesIO(images[0].encoded_image_string)
                                    ).convert('RGB'))
    np.testing.assert_array_equal(decoded, image)


class ProgressAndConsoleTest(absltest.TestCase):

  def test_progress_writer_and_console(self):
    stream, lines = io.StringIO(), []
    w = writers.MultiWriter([writers.ProgressWriter('run', stream),
                             writers.ConsoleWriter(lines.append, 'p ')])
    w.writers[0].start(2)
    w.write_scalars(2, {'loss': 0.5, 'acc_seen': 75.0})
    w.close()
    self.assertIn('run task 2/2 loss 0.5000 acc 75.00', stream.getvalue())
    self.assertEqual(lines, ['p step 2  loss 0.5000  acc_seen 75.00'])


class ProgressTest(absltest.TestCase):

  def test_plain_lines_and_rate_limit(self):
    stream = io.StringIO()
    # Start at 100; tasks end at +1, +5, +12, +13, +14 seconds.
    clock = FakeClock(100.0, 101.0, 105.0, 112.0, 113.0, 114.0)
    progress = progress_lib.Progress(5, 'emcl seed 0', stream,
                                    every_seconds=10, clock=clock)
    for task, loss, acc in ((1, 2.0, 10.0), (2, 1.5, 20.0), (3, 1.0, 30.0),
                            (4, 0.5, 40.0), (5, 0.25, 50.125)):
      progress.update(task, loss, acc)
    progress.close()
    self.assertEqual(stream.getvalue().splitlines(), [
        # eta = elapsed / done * left: 1 / 1 * 4.
        'emcl seed 0 task 1/5 loss 2.0000 acc 10.00 elapsed 1.0s eta 4.0s',
        # Task 2 at +5 is within 10 s of the last line; task 3 at +12 is not.
        'emcl seed 0 task 3/5 loss 1.0000 acc 30.00 elapsed 12.0s eta 8.0s',
        # Task 4 (+13) skipped; the last task is always reported.
        'emcl seed 0 task 5/5 loss 0.2500 acc 50.12 elapsed 14.0s eta 0.0s',
    ])

  def test_rate_limit_many_tasks(self):
    stream = io.StringIO()
    times = [0.0] + [0.7 * t for t in range(1, 101)]
    progress = progress_lib.Progress(100, 'run', stream, every_seconds=5,
                             clock=FakeClock(*times))
    for t in range(1, 101):
      progress.update(t, 0.1, 50.0)
    lines = stream.getvalue().splitlines()
    elapsed = [float(re.search(r'elapsed (\S+)s', l)[1]) for l in lines]
    self.assertTrue(all(b - a >= 5 - 1e-9 for a, b in
                        zip(elapsed[:-2], elapsed[1:-1])), elapsed)
    self.assertTrue(lines[-1].startswith('run task 100/100 '))
    # 70 s of work at one line per >= 5 s (every 8th task): tasks 1, 9, ...
    self.assertEqual(len(lines), len(range(1, 101, 8)) + 1)

  def test_tty_bar(self):
    stream = io.StringIO()
    with progress_lib.Progress(4, 'bar', stream, tty=True) as progress:
      progress.update(1, 0.5, 90.0)
      progress.update(4, 0.125, 75.5)
    text = stream.getvalue()
    self.assertIn('bar', text)
    self.assertIn('4/4', text)
    self.assertIn('loss=0.1250', text)
    self.assertIn('acc=75.50', text)

  def test_batch_lines(self):
    stream = io.StringIO()
    # Start at 0; batch reports at +4 (too soon), +11, +15 (too soon),
    # +25 (the task's last batch: no line), then the task line at +26.
    clock = FakeClock(0.0, 4.0, 11.0, 15.0, 25.0, 26.0)
    progress = progress_lib.Progress(2, 'r', stream, every_seconds=10, clock=clock)
    for done, loss in ((10, 2.0), (20, 1.5), (30, 1.25), (40, 1.0)):
      progress.batch(1, done, 40, loss)
    progress.update(1, 1.1, 50.0)
    self.assertEqual(stream.getvalue().splitlines(), [
        # The task started at its first report (+4): 7 s for 10 more
        # batches... eta = (11 - 4) / 20 * (40 - 20).
        'r task 1/2 batch 20/40 loss 1.5000 task eta 7.0s',
        'r task 1/2 loss 1.1000 acc 50.00 elapsed 26.0s eta 26.0s',
    ])

  def test_batch_bar_on_a_tty(self):
    stream = io.StringIO()
    with progress_lib.Progress(3, 'bar', stream, tty=True) as progress:
      progress.batch(2, 5, 8, 0.75)
      progress.batch(2, 8, 8, 0.5)
      bar = progress._task_bar
      # tqdm redraws at most every 0.1 s: check the bar, then its drawing.
      self.assertEqual((bar.n, bar.total), (8, 8))
      self.assertIn('8/8', str(bar))
      self.assertIn('loss=0.5000', str(bar))
      progress.update(2, 0.6, 70.0)
    self.assertIn('task 2/3', stream.getvalue())
    self.assertIsNone(progress._task_bar)  # closed with its task

  def test_not_a_tty_by_default(self):
    stream = io.StringIO()  # isatty() is False
    progress_lib.Progress(2, 'x', stream, clock=FakeClock(0.0, 1.0)).update(
        1, 0.5, 1.0)
    self.assertStartsWith(stream.getvalue(), 'x task 1/2 ')

  def test_validation(self):
    with self.assertRaisesRegex(ValueError, 'total_tasks'):
      progress_lib.Progress(0, 'x', io.StringIO())
    progress = progress_lib.Progress(3, 'x', io.StringIO())
    for bad in (0, 4):
      with self.assertRaisesRegex(ValueError, r'1\.\.3'):
        progress.update(bad, 0.0, 0.0)


if __name__ == '__main__':
  absltest.main()
