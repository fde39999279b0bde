"""Metric writers: where a run's per-task records go, as data.

Every writer has the clu-style interface

  write_scalars(step, scalars)   a mapping name -> number
  write_images(step, images)     a mapping name -> [H, W, 3] uint8 array
  write_hparams(hparams)         the run's hyper-parameters, once
  flush(), close()

and ignores what it cannot show. The writers:

  JsonLinesWriter(path)     one JSON object per line (`read_json_lines`)
  CsvWriter(path)           one row per step, a header of the first keys
  TensorBoardWriter(logdir) event files through tensorboardX: scalars, the
                            hparams dashboard, images (`read_events`)
  ProgressWriter(...)       the progress display (`progress.Progress`)
  ConsoleWriter(print_fn)   one line per step (run.py --config.output.verbose=true)
  MultiWriter(writers)      all of them at once

`task_scalars(record)` turns the engine's `TaskRecord` into the scalars of
one step (step = tasks learned so far, 1..T). Nothing here formats a value
to be parsed back.
"""

import csv
import json
import os
import struct
import time
from typing import IO, Any, Callable, Mapping, Optional, Protocol, Sequence

import numpy as np

from emcl_jax.reporting import progress as progress_lib


class MetricWriter(Protocol):
  """The interface every writer implements (clu.metric_writers')."""

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    ...

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    ...

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    ...

  def flush(self) -> None:
    ...

  def close(self) -> None:
    ...


class _Ignoring:
  """Defaults for a writer that shows only some kinds of data: what it does
  not override is dropped."""

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    del step, scalars

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    del step, images

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    del hparams

  def flush(self) -> None:
    pass

  def close(self) -> None:
    pass


def task_scalars(record: Any, seed: Optional[int] = None) -> dict[str, float]:
  """The scalars of one engine `TaskRecord` (accuracies in percent).

  loss: the task's mean training loss; acc_this: accuracy on the task just
  learned; acc_seen: mean accuracy over the tasks learned so far; train_s,
  eval_s: its training and evaluation seconds; acc_seen_class: acc_seen
  class-incremental, when evaluated (`--config.protocol.eval=both`);
  val_acc_this, val_acc_seen: the same on the validation sets, when held
  out (`--config.data.validation`). With a seed axis ([S] loss, [S, T']
  accuracy), `seed` picks one seed; None averages over them.
  """
  loss = np.asarray(record.loss)
  t = record.task

  def rows(name):
    acc = getattr(record, name, None)
    if acc is None:
      return None
    acc = np.asarray(acc)
    return acc[seed] if acc.ndim > 1 and seed is not None else acc

  if loss.ndim and seed is not None:
    loss = loss[seed]
  acc = rows('accuracy')
  out = {'loss': float(loss.mean()),
         'acc_this': float(100 * acc[..., t].mean()),
         'acc_seen': float(100 * acc[..., :t + 1].mean()),
         'train_s': float(record.train_seconds),
         'eval_s': float(record.eval_seconds)}
  if (acc := rows('accuracy_class')) is not None:
    out['acc_seen_class'] = float(100 * acc[..., :t + 1].mean())
  if (acc := rows('val_accuracy')) is not None:
    out['val_acc_this'] = float(100 * acc[..., t].mean())
    out['val_acc_seen'] = float(100 * acc[..., :t + 1].mean())
  return out


def _number(value: Any) -> Any:
  """numpy scalars and arrays -> Python numbers and lists (for JSON)."""
  if hasattr(value, 'tolist'):
    return value.tolist()
  raise TypeError(f'not JSON serialisable: {type(value).__name__}')


def _open_for(path: str, keep: Optional[Callable[[str], bool]]) -> IO[str]:
  """Opens `path` for writing. keep=None starts it afresh; otherwise the
  lines `keep` accepts are kept (a resumed run) and writing continues."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  kept = []
  if keep is not None and os.path.exists(path):
    with open(path) as f:
      lines = f.readlines()
    if lines and not lines[-1].endswith('\n'):
      lines.pop()  # the record a killed run was writing: it is redone
    for n, line in enumerate(lines, 1):
      try:
        if keep(line):
          kept.append(line)
      except (ValueError, TypeError, AttributeError):
        raise ValueError(
            f'{path} line {n} is not a record of this writer ({line[:40]!r}); '
            'delete that line to resume the run, or pass '
            '--config.output.overwrite=true to start it afresh') from None
  f = open(path, 'w')
  f.writelines(kept)
  return f


class JsonLinesWriter(_Ignoring):
  """One JSON object per line, flushed after every line.

  `write_scalars(1, {'loss': 0.3})` appends
  `{"step": 1, "wall_time": 1712345678.9, "loss": 0.3}`; `write_hparams`
  appends `{"hparams": {...}}`; images are not written. The file is created
  at the first write, so a run that fails before its first task leaves
  none.

  Args:
    path: the file.
    keep_steps: continue the file of a resumed run, keeping its records of
      steps 1..keep_steps (later ones are redone); None: start afresh.
  """

  def __init__(self, path: str, keep_steps: Optional[int] = None):
    self.path, self._keep, self._file = path, keep_steps, None

  def _write(self, record: dict[str, Any]) -> None:
    if self._file is None:
      keep = None if self._keep is None else (
          lambda line: json.loads(line).get('step', 0) <= self._keep)
      self._file = _open_for(self.path, keep)
    self._file.write(json.dumps(record, default=_number) + '\n')
    self._file.flush()

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if 'step' in scalars or 'wall_time' in scalars:
      raise ValueError("'step' and 'wall_time' are set by the writer")
    self._write({'step': int(step), 'wall_time': time.time(), **scalars})

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    if self._keep:  # a resumed run wrote them already
      return
    self._write({'hparams': dict(hparams)})

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()


def read_json_lines(path: str) -> list[dict[str, Any]]:
  """Every record of a `JsonLinesWriter` file, in order."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


class CsvWriter(_Ignoring):
  """One CSV row per step: `step` then the first step's scalar names (later
  names are dropped); hparams and images are not written.

  Args:
    path: the file (created at the first write).
    keep_steps: as `JsonLinesWriter`'s.
  """

  def __init__(self, path: str, keep_steps: Optional[int] = None):
    self.path, self._keep = path, keep_steps
    self._file, self._csv, self._columns = None, None, None

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._columns is not None and not set(scalars) & set(self._columns):
      return  # none of the file's columns
    if self._file is None:
      if self._keep is not None and os.path.exists(self.path):
        with open(self.path) as f:
          header = next(csv.reader(f), None)
        self._columns = header[1:] if header else None
      keep = None if self._keep is None else (
          lambda line: not line[:1].isdigit()
          or int(line.split(',', 1)[0]) <= self._keep)
      self._file = _open_for(self.path, keep)
      self._csv = csv.writer(self._file)
      if self._columns is None:
        self._columns = list(scalars)
        self._csv.writerow(['step'] + self._columns)
    self._csv.writerow([int(step)] + [scalars.get(c, '')
                                      for c in self._columns])
    self._file.flush()

  def flush(self) -> None:
    if self._file is not None:
      self._file.flush()

  def close(self) -> None:
    if self._file is not None:
      self._file.close()


class TensorBoardWriter:
  """TensorBoard event files in `logdir`, written by tensorboardX.

  Scalars under their names, images as [H, W, 3] uint8, and the hparams
  dashboard: `write_hparams` records the run's hyper-parameters, with
  `metrics` (tags written later with `write_scalars`) as its metrics.
  """

  def __init__(self, logdir: str, metrics: Sequence[str] = ('final/acc',
                                                             'final/bwt')):
    from tensorboardX import SummaryWriter  # only when TensorBoard is asked
    self.logdir, self._metrics = logdir, tuple(metrics)
    self._writer = SummaryWriter(logdir=logdir)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for tag, value in scalars.items():
      self._writer.add_scalar(tag, float(value), int(step))

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    for tag, image in images.items():
      self._writer.add_image(tag, np.asarray(image), int(step),
                             dataformats='HWC')

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    from tensorboardX.summary import hparams as hparams_summary
    values = {k: (v if isinstance(v, (bool, int, float, str)) else str(v))
              for k, v in hparams.items()}
    for summary in hparams_summary(values, {m: 0.0 for m in self._metrics}):
      self._writer.file_writer.add_summary(summary)

  def flush(self) -> None:
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def read_events(logdir: str) -> list[Any]:
  """Every `Event` proto of the event files in `logdir`, in file order
  (TFRecord framing: length, its CRC, the proto, its CRC)."""
  from tensorboardX.proto import event_pb2
  events = []
  for name in sorted(os.listdir(logdir)):
    if 'tfevents' not in name:
      continue
    with open(os.path.join(logdir, name), 'rb') as f:
      data = f.read()
    at = 0
    while at + 12 <= len(data):
      (length,) = struct.unpack('<Q', data[at:at + 8])
      event = event_pb2.Event()
      event.ParseFromString(data[at + 12:at + 12 + length])
      events.append(event)
      at += 12 + length + 4
  return events


class ProgressWriter(_Ignoring):
  """The progress display as a writer: `write_scalars` moves the task bar
  (it reads `loss` and `acc_seen`); `batch` is the engine's in-task
  `batch_fn`. The display is made at the first report.

  Args:
    label: names the run, e.g. 'mnist_permutations emcl seed 0'.
    stream: where it writes (stderr if None).
  """

  def __init__(self, label: str, stream: Optional[IO[str]] = None):
    self._label, self._stream = label, stream
    self._progress: Optional[progress_lib.Progress] = None

  def _display(self, num_tasks: int) -> progress_lib.Progress:
    if self._progress is None:
      self._progress = progress_lib.Progress(num_tasks, self._label,
                                             self._stream)
    return self._progress

  def start(self, num_tasks: int) -> None:
    """Sets the number of tasks (before the first report)."""
    self._display(num_tasks)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    if self._progress is not None and 'acc_seen' in scalars:
      self._progress.update(int(step), scalars['loss'], scalars['acc_seen'])

  def batch(self, task: int, num_tasks: int, done: int, num_batches: int,
            loss: float) -> None:
    """The engine's `batch_fn` (task counts from 0)."""
    self._display(num_tasks).batch(task + 1, done, num_batches, loss)

  def close(self) -> None:
    if self._progress is not None:
      self._progress.close()


class ConsoleWriter(_Ignoring):
  """One line per step, `step 3  loss 0.4120  acc_this 91.20 ...`, given to
  `print_fn` (for reading, not parsing)."""

  def __init__(self, print_fn: Callable[[str], None] = print,
               prefix: str = ''):
    self._print, self._prefix = print_fn, prefix

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    values = '  '.join(f'{k} {v:.4f}' if k == 'loss' else f'{k} {v:.2f}'
                       for k, v in scalars.items())
    self._print(f'{self._prefix}step {step}  {values}')

class MultiWriter:
  """Writes to every writer of `writers`, in order."""

  def __init__(self, writers: Sequence[MetricWriter]):
    self.writers = list(writers)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    for w in self.writers:
      w.write_scalars(step, scalars)

  def write_images(self, step: int, images: Mapping[str, np.ndarray]) -> None:
    for w in self.writers:
      w.write_images(step, images)

  def write_hparams(self, hparams: Mapping[str, Any]) -> None:
    for w in self.writers:
      w.write_hparams(hparams)

  def flush(self) -> None:
    for w in self.writers:
      w.flush()

  def close(self) -> None:
    for w in self.writers:
      w.close()
