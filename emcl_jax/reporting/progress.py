"""Progress over the tasks of a run: a tqdm bar on a terminal, rate-limited
plain lines otherwise (CI, log files). `writers.ProgressWriter` feeds it."""

import sys
import time
from typing import IO, Callable, Optional


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
