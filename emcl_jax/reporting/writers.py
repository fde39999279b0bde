"""Run logs: JSON lines, TensorBoard event files, a progress reporter.

  JsonLinesWriter(path)     one JSON object per line: step, wall_time and
                            the scalars; flushed after every line.
  TensorBoardWriter(logdir) scalars in a TensorBoard event file, written
                            without TensorFlow or tensorboard: TFRecord
                            framing with masked CRC32C and hand-encoded
                            `Event` protos; `read_events` reads them back.
  Progress(total, label)    progress over tasks: a tqdm bar on a TTY, rate
                            limited plain lines otherwise (CI, log files).
  engine_log_fn(...)        the engine's `log_fn`: parses its per-task line
                            and feeds a Progress and any writers.
  RunLog(label, jsonl_path) what a launch script logs about one run:
                            progress (per task and within each task) +
                            JSON lines (+ TensorBoard), as the engine's
                            `log_fn` and `batch_fn` (its `batch`).

The engine trains one whole task per compiled call; the metrics are logged
per task (step = number of tasks learned so far, 1..T), and in-task
progress comes from a host callback about 50 times per task
(`engine.make_train_task`'s `batch_fn`).
"""

import json
import math
import os
import re
import socket
import struct
import sys
import time
from typing import (Any, Callable, IO, NamedTuple, Optional, Sequence,
                    Union)

# ----------------------------------------------------------------- JSON lines


def _jsonable(value: Any) -> Any:
  """numpy / jax scalars and arrays -> Python numbers and lists."""
  if hasattr(value, 'tolist'):
    return value.tolist()
  raise TypeError(f'not JSON serialisable: {type(value).__name__}')


class JsonLinesWriter:
  """Appends one JSON object per line to `path`, flushing every line.

  `write(step, loss=0.3, acc=81.2)` appends
  `{"step": 1, "wall_time": 1712345678.9, "loss": 0.3, "acc": 81.2}`.
  Use as a context manager or call `close()`. `append=False` starts the
  file afresh (a new run); `append=True` continues it (a resumed run).
  """

  def __init__(self, path: str, append: bool = True):
    folder = os.path.dirname(path)
    if folder:
      os.makedirs(folder, exist_ok=True)
    self.path = path
    self._file = open(path, 'a' if append else 'w')

  def write(self, step: int, **scalars: Any) -> None:
    """Appends {"step", "wall_time" (seconds since the epoch), **scalars}."""
    if 'step' in scalars or 'wall_time' in scalars:
      raise ValueError("'step' and 'wall_time' are set by the writer")
    record = {'step': int(step), 'wall_time': time.time(), **scalars}
    self._file.write(json.dumps(record, default=_jsonable) + '\n')
    self._file.flush()

  def close(self) -> None:
    """Closes the file (idempotent)."""
    self._file.close()

  def __enter__(self) -> 'JsonLinesWriter':
    return self

  def __exit__(self, *exc) -> None:
    self.close()


def read_json_lines(path: str) -> list[dict[str, Any]]:
  """Every record of a `JsonLinesWriter` file, in order."""
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------- CRC32C, TFRecords

def _crc32c_table() -> tuple[int, ...]:
  """The byte table of CRC-32C (Castagnoli, reflected poly 0x82F63B78)."""
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    table.append(crc)
  return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  """CRC-32C of `data` (crc32c(b'123456789') == 0xE3069283)."""
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
  """TFRecord's masked CRC: rotate right by 15, add 0xa282ead8 mod 2^32."""
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord(data: bytes) -> bytes:
  """One TFRecord: uint64 length, masked CRC of it, data, masked CRC of it
  (all little-endian)."""
  length = struct.pack('<Q', len(data))
  return (length + struct.pack('<I', masked_crc32c(length)) + data
          + struct.pack('<I', masked_crc32c(data)))


def read_tfrecords(path: str) -> list[bytes]:
  """The records of a TFRecord file, every CRC checked.

  Raises:
    ValueError: a truncated record or a CRC mismatch.
  """
  with open(path, 'rb') as f:
    buf = f.read()
  out, pos = [], 0
  while pos < len(buf):
    if pos + 12 > len(buf):
      raise ValueError(f'{path}: truncated record header at byte {pos}')
    length_bytes = buf[pos:pos + 8]
    (length,) = struct.unpack('<Q', length_bytes)
    (length_crc,) = struct.unpack('<I', buf[pos + 8:pos + 12])
    if length_crc != masked_crc32c(length_bytes):
      raise ValueError(f'{path}: length CRC mismatch at byte {pos}')
    start, end = pos + 12, pos + 12 + length
    if end + 4 > len(buf):
      raise ValueError(f'{path}: truncated record at byte {pos}')
    data = buf[start:end]
    (data_crc,) = struct.unpack('<I', buf[end:end + 4])
    if data_crc != masked_crc32c(data):
      raise ValueError(f'{path}: data CRC mismatch at byte {pos}')
    out.append(data)
    pos = end + 4
  return out


# ------------------------------------------------------------ protobuf wire

def _varint(value: int) -> bytes:
  """Protobuf base-128 varint; negative int64 as 10-byte two's complement."""
  value &= (1 << 64) - 1
  out = bytearray()
  while True:
    bits = value & 0x7F
    value >>= 7
    if value:
      out.append(bits | 0x80)
    else:
      out.append(bits)
      return bytes(out)


def _key(field: int, wire_type: int) -> bytes:
  """A field's key: (field number << 3) | wire type."""
  return _varint((field << 3) | wire_type)


def _bytes_field(field: int, data: bytes) -> bytes:
  """A length-delimited field (wire type 2: strings, messages)."""
  return _key(field, 2) + _varint(len(data)) + data


def encode_event(wall_time: float, step: int, *,
                 file_version: Optional[str] = None,
                 scalars: Sequence[tuple[str, float]] = ()) -> bytes:
  """A serialised tensorflow `Event` proto.

  Event{wall_time: double = 1, step: int64 = 2, file_version: string = 3,
  summary: Summary = 5}, Summary{value: repeated Value = 1},
  Value{tag: string = 1, simple_value: float = 2}.
  """
  out = _key(1, 1) + struct.pack('<d', wall_time)
  if step:
    out += _key(2, 0) + _varint(step)
  if file_version is not None:
    out += _bytes_field(3, file_version.encode())
  if scalars:
    values = b''.join(
        _bytes_field(1, _bytes_field(1, tag.encode())
                     + _key(2, 5) + struct.pack('<f', value))
        for tag, value in scalars)
    out += _bytes_field(5, values)
  return out


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
  """(field, wire type, raw value) of a serialised proto's fields."""
  out, pos = [], 0

  def varint():
    nonlocal pos
    value = shift = 0
    while True:
      byte = data[pos]
      pos += 1
      value |= (byte & 0x7F) << shift
      shift += 7
      if not byte & 0x80:
        return value

  while pos < len(data):
    key = varint()
    field, wire = key >> 3, key & 7
    if wire == 0:
      value = varint()
    elif wire == 1:
      value, pos = data[pos:pos + 8], pos + 8
    elif wire == 2:
      n = varint()
      value, pos = data[pos:pos + n], pos + n
    elif wire == 5:
      value, pos = data[pos:pos + 4], pos + 4
    else:
      raise ValueError(f'unsupported wire type {wire}')
    out.append((field, wire, value))
  return out


class Event(NamedTuple):
  """A decoded `Event`: scalars is ((tag, simple_value), ...)."""
  wall_time: float
  step: int
  file_version: Optional[str]
  scalars: tuple[tuple[str, float], ...]


def decode_event(data: bytes) -> Event:
  """Decodes `encode_event`'s fields of a serialised `Event`."""
  wall_time, step, version, scalars = 0.0, 0, None, []
  for field, _, raw in _fields(data):
    if field == 1:
      (wall_time,) = struct.unpack('<d', raw)
    elif field == 2:
      step = raw - (1 << 64) if raw >= 1 << 63 else raw
    elif field == 3:
      version = raw.decode()
    elif field == 5:
      for vfield, _, value in _fields(raw):
        if vfield != 1:
          continue
        tag, simple = '', math.nan
        for f, _, v in _fields(value):
          if f == 1:
            tag = v.decode()
          elif f == 2:
            (simple,) = struct.unpack('<f', v)
        scalars.append((tag, simple))
  return Event(wall_time, step, version, tuple(scalars))


def read_events(path: str) -> list[Event]:
  """Every event of a TensorBoard event file, CRCs checked."""
  return [decode_event(r) for r in read_tfrecords(path)]


# -------------------------------------------------------------- TensorBoard

class TensorBoardWriter:
  """Scalars in a TensorBoard event file, without TensorFlow.

  Writes `{logdir}/events.out.tfevents.{unix seconds}.{hostname}` (a `.N`
  suffix if that file exists already), starting with the
  `file_version: "brain.Event:2"` event; `tensorboard --logdir` reads it.
  Records are buffered until `flush()` or `close()`; use as a context
  manager or call `close()`.
  """

  def __init__(self, logdir: str):
    os.makedirs(logdir, exist_ok=True)
    now = time.time()
    base = os.path.join(
        logdir, f'events.out.tfevents.{int(now):010d}.{socket.gethostname()}')
    path, n = base, 0
    while os.path.exists(path):
      n += 1
      path = f'{base}.{n}'
    self.path = path
    self._file = open(path, 'xb')
    self._file.write(tfrecord(encode_event(now, 0,
                                           file_version='brain.Event:2')))
    self.flush()

  def scalar(self, tag: str, value: float, step: int,
             wall_time: Optional[float] = None) -> None:
    """Records `value` under `tag` at `step` (wall_time: now if None)."""
    self._file.write(tfrecord(encode_event(
        time.time() if wall_time is None else wall_time, int(step),
        scalars=[(tag, float(value))])))

  def write(self, step: int, **scalars: float) -> None:
    """Records every scalar at `step` in one event (tag = keyword)."""
    self._file.write(tfrecord(encode_event(
        time.time(), int(step),
        scalars=[(tag, float(v)) for tag, v in scalars.items()])))

  def flush(self) -> None:
    """Writes the buffered records to disk."""
    self._file.flush()

  def close(self) -> None:
    """Flushes and closes the file (idempotent)."""
    if not self._file.closed:
      self.flush()
      self._file.close()

  def __enter__(self) -> 'TensorBoardWriter':
    return self

  def __exit__(self, *exc) -> None:
    self.close()


# ----------------------------------------------------------------- progress

def _isatty(stream: IO[str]) -> bool:
  """Whether `stream` is an interactive terminal."""
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):
    return False


class Progress:
  """Progress over the tasks of a run, reported after each task.

  On a TTY: a tqdm bar over tasks (rate, ETA) with the last task's loss and
  accuracy as postfix. Otherwise plain lines
  `{label} task i/T loss L acc A elapsed Xs eta Ys`, at most one per
  `every_seconds` plus always the last task's. Elapsed time counts from
  construction; ETA = elapsed / i * (T - i).

  Args:
    total_tasks: T.
    label: a prefix naming the run (e.g. 'emcl seed 0').
    stream: where to write.
    every_seconds: least seconds between two plain lines.
    clock: seconds now (injectable for tests).
    tty: force the bar (True) or plain lines (False); None: ask `stream`.
  """

  def __init__(self, total_tasks: int, label: str,
               stream: Optional[IO[str]] = None,
               every_seconds: float = 10.0,
               clock: Callable[[], float] = time.monotonic,
               tty: Optional[bool] = None):
    if total_tasks < 1:
      raise ValueError(f'total_tasks must be >= 1; got {total_tasks}')
    if every_seconds < 0:
      raise ValueError(f'every_seconds must be >= 0; got {every_seconds}')
    self.total, self.label = total_tasks, label
    self.stream = sys.stderr if stream is None else stream
    self.every_seconds, self._clock = every_seconds, clock
    self._start = clock()
    self._last_line: Optional[float] = None
    self._bar = None
    self._task_bar, self._task_bar_of = None, None
    self._task_start: dict[int, float] = {}
    if _isatty(self.stream) if tty is None else tty:
      from tqdm import tqdm
      self._tqdm = tqdm
      self._bar = tqdm(total=total_tasks, desc=label, unit='task',
                       file=self.stream, dynamic_ncols=True)

  def update(self, task: int, loss: float, acc: float) -> None:
    """Reports that `task` tasks are learned (1..T), with the last task's
    mean training loss and an accuracy in percent."""
    if not 1 <= task <= self.total:
      raise ValueError(f'task must be in 1..{self.total}; got {task}')
    self._close_task_bar()
    if self._bar is not None:
      self._bar.set_postfix(loss=f'{loss:.4f}', acc=f'{acc:.2f}',
                            refresh=False)
      self._bar.update(task - self._bar.n)
      return
    now = self._clock()
    if (task < self.total and self._last_line is not None
        and now - self._last_line < self.every_seconds):
      return
    self._last_line = now
    elapsed = now - self._start
    eta = elapsed / task * (self.total - task)
    self.stream.write(f'{self.label} task {task}/{self.total} '
                      f'loss {loss:.4f} acc {acc:.2f} '
                      f'elapsed {elapsed:.1f}s eta {eta:.1f}s\n')
    self.stream.flush()

  def batch(self, task: int, done: int, total: int, loss: float) -> None:
    """In-task progress: `done` of the `total` batches of task `task`
    (1..T) are learned, the last one's loss `loss`.

    On a TTY: a second bar for the current task (rate, ETA, loss), removed
    when the task ends. Otherwise a line `{label} task i/T batch d/n loss L
    task eta Ys`, sharing the `every_seconds` limit with the task lines
    (so none for tasks shorter than it).
    """
    now = self._clock()
    start = self._task_start.setdefault(task, now)
    if self._bar is not None:
      if self._task_bar_of != task:
        self._close_task_bar()
        self._task_bar = self._tqdm(
            total=total, desc=f'task {task}/{self.total}', unit='batch',
            leave=False, position=1, file=self.stream, dynamic_ncols=True)
        self._task_bar_of = task
      self._task_bar.set_postfix(loss=f'{loss:.4f}', refresh=False)
      self._task_bar.update(max(0, done - self._task_bar.n))
      return
    last = self._start if self._last_line is None else self._last_line
    if now - last < self.every_seconds or done >= total:
      return
    self._last_line = now
    eta = (now - start) / done * (total - done)
    self.stream.write(f'{self.label} task {task}/{self.total} batch '
                      f'{done}/{total} loss {loss:.4f} '
                      f'task eta {eta:.1f}s\n')
    self.stream.flush()

  def _close_task_bar(self) -> None:
    if self._task_bar is not None:
      self._task_bar.close()
      self._task_bar, self._task_bar_of = None, None

  def close(self) -> None:
    """Closes the bars, if any (idempotent)."""
    self._close_task_bar()
    if self._bar is not None:
      self._bar.close()

  def __enter__(self) -> 'Progress':
    return self

  def __exit__(self, *exc) -> None:
    self.close()


# ------------------------------------------------------------ engine wiring

class TaskLine(NamedTuple):
  """The engine's per-task log line, parsed; accuracies in percent."""
  task: int
  total: int
  loss: float
  acc_this: float
  acc_seen: float
  train_s: Optional[float] = None


_ENGINE_LINE = re.compile(
    r'task (\d+)/(\d+)\s+loss (\S+)\s+acc\(this\) (\S+)\s+acc\(seen\) (\S+)'
    r'(?:\s+train_s (\S+))?')


def parse_engine_line(line: str) -> Optional[TaskLine]:
  """Parses `engine._protocol`'s line `task i/T  loss L  acc(this) A
  acc(seen) S  train_s X` (the last field optional); None if `line` is not
  one."""
  m = _ENGINE_LINE.search(line)
  if m is None:
    return None
  return TaskLine(int(m[1]), int(m[2]), float(m[3]), float(m[4]),
                  float(m[5]), None if m[6] is None else float(m[6]))


def _scalars(parsed: TaskLine) -> dict[str, float]:
  """The values a writer records for one task (train_s when known)."""
  out = dict(loss=parsed.loss, acc_this=parsed.acc_this,
             acc_seen=parsed.acc_seen)
  if parsed.train_s is not None:
    out['train_s'] = parsed.train_s
  return out


def engine_log_fn(progress: Union[Progress, str, None] = None,
                  writers: Sequence[Any] = (),
                  other: Optional[Callable[[str], None]] = None,
                  stream: Optional[IO[str]] = None
                  ) -> Callable[[str], None]:
  """A `log_fn` for `engine.train_and_evaluate` and `experiment.run`.

  Each per-task line goes to `progress.update(task, loss, acc_seen)` and to
  every writer's `write(task, loss=, acc_this=, acc_seen=[, train_s=])` (a
  `JsonLinesWriter` or `TensorBoardWriter`); lines it cannot parse go to
  `other` (dropped if None).

  Args:
    progress: a `Progress`; or a label, and then a `Progress(T, label,
      stream)` is made at the first line (T read from it) and closed after
      the last task; or None.
    writers: objects with `write(step, **scalars)`.
    other: receives the lines that are not per-task lines.
    stream: where a `Progress` made from a label writes (stderr if None).
  """
  made: list[Progress] = []

  def log_fn(line: str) -> None:
    parsed = parse_engine_line(line)
    if parsed is None:
      if other is not None:
        other(line)
      return
    bar = progress
    if isinstance(progress, str):
      if not made:
        made.append(Progress(parsed.total, progress, stream))
      bar = made[0]
    if bar is not None:
      bar.update(parsed.task, parsed.loss, parsed.acc_seen)
      if made and parsed.task == parsed.total:
        made.pop().close()
    for w in writers:
      w.write(parsed.task, **_scalars(parsed))
  return log_fn


class RunLog:
  """Everything a launch script logs about one run: the engine's `log_fn`
  (call the object) and `batch_fn` (its `batch` method).

  Per task: a `Progress` bar or line on `stream` labelled `label` (unless
  `progress` is False), a record in the JSON-lines file `jsonl_path`
  (always) and, with `tensorboard_dir`, a TensorBoard event. Within a task:
  `Progress.batch`. `echo`, if
  given, also receives every raw engine line (run.py's --verbose). The
  files are made at the first line, so a run refused before its first task
  leaves none. Use as a context manager; the files are closed on exit.

  Args:
    label: names the run on the progress bar, e.g. 'emcl seed 0'.
    jsonl_path: the JSON-lines file (`JsonLinesWriter`).
    tensorboard_dir: a folder for a `TensorBoardWriter`, or None.
    append: continue the JSON-lines file (a resumed run) instead of
      starting it afresh.
    echo: receives each raw line, or None.
    progress: show progress at all.
    stream: where progress goes (stderr if None).
  """

  def __init__(self, label: str, jsonl_path: str,
               tensorboard_dir: Optional[str] = None, *,
               append: bool = False,
               echo: Optional[Callable[[str], None]] = None,
               progress: bool = True, stream: Optional[IO[str]] = None):
    self._label, self._show, self._stream = label, progress, stream
    self._jsonl, self._tb, self._append = jsonl_path, tensorboard_dir, append
    self._echo = echo
    self.writers: list[Any] = []
    self._progress: Optional[Progress] = None

  def _bar(self, total_tasks: int) -> Optional[Progress]:
    if self._show and self._progress is None:
      self._progress = Progress(total_tasks, self._label, self._stream)
    return self._progress

  def __call__(self, line: str) -> None:
    """The engine's `log_fn`: one line after each task."""
    if self._echo is not None:
      self._echo(line)
    parsed = parse_engine_line(line)
    if parsed is None:
      return
    if not self.writers:
      self.writers.append(JsonLinesWriter(self._jsonl, append=self._append))
      if self._tb is not None:
        self.writers.append(TensorBoardWriter(self._tb))
    bar = self._bar(parsed.total)
    if bar is not None:
      bar.update(parsed.task, parsed.loss, parsed.acc_seen)
    for w in self.writers:
      w.write(parsed.task, **_scalars(parsed))

  def batch(self, task: int, num_tasks: int, done: int, num_batches: int,
            loss: float) -> None:
    """The engine's `batch_fn` (task counts from 0): in-task progress."""
    bar = self._bar(num_tasks)
    if bar is not None:
      bar.batch(task + 1, done, num_batches, loss)

  def close(self) -> None:
    """Closes the writers and the progress bars (idempotent)."""
    for w in self.writers:
      w.close()
    if self._progress is not None:
      self._progress.close()

  def __enter__(self) -> 'RunLog':
    return self

  def __exit__(self, *exc) -> None:
    self.close()
