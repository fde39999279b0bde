"""Run logs: JSON lines, TensorBoard event files (framing, CRC32C, protos)
read back byte by byte, and the progress reporter's lines and rate limit."""

import io
import json
import os
import re
import socket
import struct
import time

from absl import flags
from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from emcl_jax.reporting import writers


def setUpModule():
  # self.create_tempdir() reads --test_tmpdir; pytest does not parse flags.
  if not flags.FLAGS.is_parsed():
    flags.FLAGS.mark_as_parsed()


class FakeClock:
  """Returns the given times in order."""

  def __init__(self, *times):
    self.times = list(times)

  def __call__(self):
    return self.times.pop(0)


class JsonLinesTest(absltest.TestCase):

  def test_write_flush_append(self):
    path = os.path.join(self.create_tempdir().full_path, 'sub', 'log.jsonl')
    before = time.time()
    with writers.JsonLinesWriter(path) as w:
      w.write(1, loss=np.float32(0.5), acc=81.25, task=np.int64(3))
      # Flushed: readable before close.
      self.assertEqual(writers.read_json_lines(path)[0]['loss'], 0.5)
      w.write(2, loss=0.25, curve=np.array([1.0, 2.0]))
    with writers.JsonLinesWriter(path) as w:  # appends
      w.write(3, loss=0.125)
    after = time.time()
    records = writers.read_json_lines(path)
    self.assertEqual([r['step'] for r in records], [1, 2, 3])
    self.assertEqual({k: v for k, v in records[0].items() if k != 'wall_time'},
                     {'step': 1, 'loss': 0.5, 'acc': 81.25, 'task': 3})
    self.assertEqual(records[1]['curve'], [1.0, 2.0])
    for r in records:
      self.assertBetween(r['wall_time'], before, after)
    with open(path) as f:
      lines = f.read().splitlines()
    self.assertLen(lines, 3)
    self.assertEqual(json.loads(lines[2])['loss'], 0.125)

  def test_reserved_keys(self):
    path = os.path.join(self.create_tempdir().full_path, 'log.jsonl')
    with writers.JsonLinesWriter(path) as w:
      with self.assertRaisesRegex(ValueError, 'set by the writer'):
        w.write(1, wall_time=3.0)


class CrcTest(parameterized.TestCase):

  @parameterized.parameters(
      (b'123456789', 0xE3069283),  # the CRC-32C check value
      (b'', 0x00000000),
      (bytes(32), 0x8A9136AA),  # RFC 3720 B.4: 32 bytes of zeros
      (bytes([0xFF] * 32), 0x62A8AB43),  # RFC 3720 B.4: 32 bytes of 0xff
      (bytes(range(32)), 0x46DD794E))  # RFC 3720 B.4: incrementing
  def test_crc32c(self, data, expected):
    self.assertEqual(writers.crc32c(data), expected)

  def test_masked(self):
    crc = 0xE3069283
    rotated = ((crc >> 15) | (crc << 17)) & 0xFFFFFFFF
    self.assertEqual(writers.masked_crc32c(b'123456789'),
                     (rotated + 0xA282EAD8) % 2**32)
    self.assertEqual(writers.masked_crc32c(b''), 0xA282EAD8)

  def test_tfrecord_framing(self):
    rec = writers.tfrecord(b'abc')
    self.assertLen(rec, 8 + 4 + 3 + 4)
    self.assertEqual(rec[:8], struct.pack('<Q', 3))
    self.assertEqual(struct.unpack('<I', rec[8:12])[0],
                     writers.masked_crc32c(struct.pack('<Q', 3)))
    self.assertEqual(rec[12:15], b'abc')
    self.assertEqual(struct.unpack('<I', rec[15:])[0],
                     writers.masked_crc32c(b'abc'))


class EventProtoTest(absltest.TestCase):

  def test_hand_encoded_bytes(self):
    # Event{wall_time=1.0, step=2, summary{value{tag='a', simple_value=1}}}
    value = b'\x0a\x01a' + b'\x15' + struct.pack('<f', 1.0)  # 8 bytes
    summary = b'\x0a\x08' + value  # 10 bytes
    expected = (b'\x09' + struct.pack('<d', 1.0) + b'\x10\x02'
                + b'\x2a\x0a' + summary)
    self.assertEqual(writers.encode_event(1.0, 2, scalars=[('a', 1.0)]),
                     expected)
    version = writers.encode_event(0.5, 0, file_version='brain.Event:2')
    self.assertEqual(version, b'\x09' + struct.pack('<d', 0.5)
                     + b'\x1a\x0dbrain.Event:2')

  def test_varints_round_trip(self):
    # 300 -> ac 02 (protobuf docs); -1 -> ten bytes (int64).
    self.assertEqual(writers.encode_event(0.0, 300)[9:], b'\x10\xac\x02')
    self.assertEqual(writers.encode_event(0.0, -1)[9:],
                     b'\x10' + b'\xff' * 9 + b'\x01')
    for step in (1, 127, 128, 2**31, 2**40, -5):
      self.assertEqual(writers.decode_event(writers.encode_event(0.0, step)).step,
                       step)


class TensorBoardTest(absltest.TestCase):

  def test_write_and_read_back(self):
    logdir = os.path.join(self.create_tempdir().full_path, 'tb')
    before = time.time()
    with writers.TensorBoardWriter(logdir) as tb:
      tb.scalar('loss', 0.5, 1, wall_time=123.25)
      tb.scalar('acc', 81.25, 1)
      tb.write(2, loss=0.25, acc=90.5)
      tb.flush()
    after = time.time()
    files = os.listdir(logdir)
    self.assertLen(files, 1)
    self.assertEqual(os.path.join(logdir, files[0]), tb.path)
    m = re.fullmatch(r'events\.out\.tfevents\.(\d{10})\.(.+)', files[0])
    self.assertIsNotNone(m, files[0])
    self.assertEqual(m[2], socket.gethostname())
    self.assertBetween(int(m[1]), int(before), int(after))

    records = writers.read_tfrecords(tb.path)  # checks every CRC
    self.assertLen(records, 4)
    events = [writers.decode_event(r) for r in records]
    self.assertEqual(events[0].file_version, 'brain.Event:2')
    self.assertEqual((events[0].step, events[0].scalars), (0, ()))
    self.assertEqual(events[1], writers.Event(123.25, 1, None, (('loss', 0.5),)))
    self.assertEqual((events[2].step, events[2].scalars),
                     (1, (('acc', 81.25),)))
    self.assertEqual((events[3].step, events[3].scalars),
                     (2, (('loss', 0.25), ('acc', 90.5))))
    for e in events[2:]:
      self.assertBetween(e.wall_time, before, after)
    self.assertEqual(writers.read_events(tb.path), events)

  def test_independent_protobuf_decode(self):
    """The records parse as tensorflow.Event with the protobuf library."""
    from google.protobuf import descriptor_pb2
    from google.protobuf import descriptor_pool
    from google.protobuf import message_factory
    fdp = descriptor_pb2.FileDescriptorProto(
        name='emcl_test_event.proto', package='emcl_test', syntax='proto3')
    f = descriptor_pb2.FieldDescriptorProto
    value = fdp.message_type.add(name='Value')
    value.field.add(name='tag', number=1, type=f.TYPE_STRING,
                    label=f.LABEL_OPTIONAL)
    value.field.add(name='simple_value', number=2, type=f.TYPE_FLOAT,
                    label=f.LABEL_OPTIONAL)
    summary = fdp.message_type.add(name='Summary')
    summary.field.add(name='value', number=1, type=f.TYPE_MESSAGE,
                      label=f.LABEL_REPEATED, type_name='.emcl_test.Value')
    event = fdp.message_type.add(name='Event')
    event.field.add(name='wall_time', number=1, type=f.TYPE_DOUBLE,
                    label=f.LABEL_OPTIONAL)
    event.field.add(name='step', number=2, type=f.TYPE_INT64,
                    label=f.LABEL_OPTIONAL)
    event.field.add(name='file_version', number=3, type=f.TYPE_STRING,
                    label=f.LABEL_OPTIONAL)
    event.field.add(name='summary', number=5, type=f.TYPE_MESSAGE,
                    label=f.LABEL_OPTIONAL, type_name='.emcl_test.Summary')
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    event_cls = message_factory.GetMessageClass(
        pool.FindMessageTypeByName('emcl_test.Event'))

    logdir = self.create_tempdir().full_path
    with writers.TensorBoardWriter(logdir) as tb:
      tb.write(7, loss=1.5, acc=-2.0)
    first, second = writers.read_tfrecords(tb.path)
    self.assertEqual(event_cls.FromString(first).file_version,
                     'brain.Event:2')
    parsed = event_cls.FromString(second)
    self.assertEqual(parsed.step, 7)
    self.assertEqual([(v.tag, v.simple_value) for v in parsed.summary.value],
                     [('loss', 1.5), ('acc', -2.0)])
    # And our encoder matches protobuf's own serialisation.
    self.assertEqual(parsed.SerializeToString(), second)

  def test_corruption_detected(self):
    logdir = self.create_tempdir().full_path
    with writers.TensorBoardWriter(logdir) as tb:
      tb.scalar('loss', 0.5, 1)
    with open(tb.path, 'rb') as f:
      data = bytearray(f.read())
    for pos, message in ((3, 'length CRC'), (len(data) - 6, 'data CRC')):
      bad = bytearray(data)
      bad[pos] ^= 0x01
      with open(tb.path, 'wb') as f:
        f.write(bad)
      with self.assertRaisesRegex(ValueError, message):
        writers.read_tfrecords(tb.path)
    with open(tb.path, 'wb') as f:
      f.write(data[:-2])
    with self.assertRaisesRegex(ValueError, 'truncated'):
      writers.read_tfrecords(tb.path)

  def test_two_writers_same_second(self):
    logdir = self.create_tempdir().full_path
    with writers.TensorBoardWriter(logdir) as a, writers.TensorBoardWriter(
        logdir) as b:
      self.assertNotEqual(a.path, b.path)
    self.assertLen(os.listdir(logdir), 2)


class ProgressTest(absltest.TestCase):

  def test_plain_lines_and_rate_limit(self):
    stream = io.StringIO()
    # Start at 100; tasks end at +1, +5, +12, +13, +14 seconds.
    clock = FakeClock(100.0, 101.0, 105.0, 112.0, 113.0, 114.0)
    progress = writers.Progress(5, 'emcl seed 0', stream, every_seconds=10,
                             clock=clock)
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
    progress = writers.Progress(100, 'run', stream, every_seconds=5,
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
    with writers.Progress(4, 'bar', stream, tty=True) as progress:
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
    progress = writers.Progress(2, 'r', stream, every_seconds=10, clock=clock)
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
    with writers.Progress(3, 'bar', stream, tty=True) as progress:
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
    writers.Progress(2, 'x', stream, clock=FakeClock(0.0, 1.0)).update(
        1, 0.5, 1.0)
    self.assertStartsWith(stream.getvalue(), 'x task 1/2 ')

  def test_validation(self):
    with self.assertRaisesRegex(ValueError, 'total_tasks'):
      writers.Progress(0, 'x', io.StringIO())
    progress = writers.Progress(3, 'x', io.StringIO())
    for bad in (0, 4):
      with self.assertRaisesRegex(ValueError, r'1\.\.3'):
        progress.update(bad, 0.0, 0.0)


class EngineLogFnTest(absltest.TestCase):

  def test_feeds_progress_and_writers(self):
    folder = self.create_tempdir().full_path
    stream = io.StringIO()
    other = []
    jsonl = writers.JsonLinesWriter(os.path.join(folder, 'log.jsonl'))
    tb = writers.TensorBoardWriter(os.path.join(folder, 'tb'))
    progress = writers.Progress(20, 'emcl', stream, every_seconds=0,
                             clock=FakeClock(0.0, 2.0))
    log_fn = writers.engine_log_fn(progress, [jsonl, tb], other.append)
    # The engine's format (engine._protocol's log()).
    log_fn(f'task {3}/{20}  loss {0.12345:.4f}  acc(this) {91.0:.2f}  '
           f'acc(seen) {85.5:.2f}')
    log_fn('restored checkpoint at task 2')
    jsonl.close()
    tb.close()
    self.assertEqual(other, ['restored checkpoint at task 2'])
    self.assertEqual(stream.getvalue(), 'emcl task 3/20 loss 0.1235 acc 85.50 '
                     'elapsed 2.0s eta 11.3s\n')
    (record,) = writers.read_json_lines(os.path.join(folder, 'log.jsonl'))
    self.assertEqual((record['step'], record['loss'], record['acc_this'],
                      record['acc_seen']), (3, 0.1235, 91.0, 85.5))
    event = writers.read_events(tb.path)[1]
    self.assertEqual(event.step, 3)
    self.assertEqual([t for t, _ in event.scalars],
                     ['loss', 'acc_this', 'acc_seen'])
    np.testing.assert_allclose([v for _, v in event.scalars],
                               [0.1235, 91.0, 85.5], rtol=1e-6)

  def test_progress_from_label(self):
    stream = io.StringIO()
    log_fn = writers.engine_log_fn('lamaml seed 1', stream=stream)
    for task in (1, 2, 3):
      log_fn(f'task {task}/3  loss 0.5000  acc(this) 90.00  '
             f'acc(seen) {80 + task:.2f}')
    lines = stream.getvalue().splitlines()
    # The first line and the last task's (T = 3 read from the lines).
    self.assertLen(lines, 2)
    self.assertStartsWith(lines[0], 'lamaml seed 1 task 1/3 loss 0.5000 '
                          'acc 81.00 elapsed ')
    self.assertStartsWith(lines[1], 'lamaml seed 1 task 3/3 loss 0.5000 '
                          'acc 83.00 elapsed ')
    self.assertEndsWith(lines[1], 'eta 0.0s')

  def test_parse(self):
    self.assertEqual(
        writers.parse_engine_line('task 10/100  loss nan  acc(this) 9.50  '
                               'acc(seen) 10.25')[1:2], (100,))
    self.assertIsNone(writers.parse_engine_line('compiling'))
    self.assertIsNone(writers.parse_engine_line(
        'task 1/2  loss 1.0  acc(this) 9.50  acc(seen) 10.25').train_s)
    self.assertEqual(writers.parse_engine_line(
        'task 1/2  loss 1.0  acc(this) 9.50  acc(seen) 10.25  '
        'train_s 0.125'), writers.TaskLine(1, 2, 1.0, 9.5, 10.25, 0.125))


if __name__ == '__main__':
  absltest.main()


class RunLogTest(absltest.TestCase):

  def test_batches_tasks_and_files(self):
    folder = self.create_tempdir().full_path
    stream = io.StringIO()
    path = os.path.join(folder, 'logs', 'run.jsonl')
    with writers.RunLog('lbl', path, os.path.join(folder, 'tb'),
                     stream=stream) as log:
      log.batch(0, 2, 3, 4, 0.5)
      self.assertFalse(os.path.exists(path))  # made at the first task line
      log('task 1/2  loss 0.5000  acc(this) 90.00  acc(seen) 90.00')
      log('task 2/2  loss 0.2500  acc(this) 80.00  acc(seen) 85.00')
    self.assertEqual(
        [(r['step'], r['loss'], r['acc_seen'])
         for r in writers.read_json_lines(path)],
        [(1, 0.5, 90.0), (2, 0.25, 85.0)])
    events = [e for e in writers.read_events(
        os.path.join(folder, 'tb', os.listdir(os.path.join(folder, 'tb'))[0]))
              if e.scalars]
    self.assertLen(events, 2)
    self.assertIn('lbl task 2/2 loss 0.2500 acc 85.00', stream.getvalue())
