"""A download's progress (`Reporter`): a tqdm bar on a terminal, otherwise
a plain line on stderr when it starts, every few seconds and at the end.
tqdm is imported only when a bar is drawn."""

import sys
import time
from typing import IO, Callable


def _isatty(stream: IO[str]) -> bool:
  """Whether `stream` is an interactive terminal."""
  try:
    return bool(stream.isatty())
  except (AttributeError, ValueError):
    return False


def megabytes(n: int) -> str:
  return f'{n / 2**20:.1f} MB'


class Reporter:
  """The default progress callback: a tqdm bar on a terminal, otherwise a
  line `{label} D of T MB (P%)` on stderr at the first call (the server's
  answer, before its first byte), then at most every `every_seconds`, and
  always one when the download is done (done == total).

  Args:
    label: what is downloaded (e.g. the file name).
    stream: where to write (default: stderr).
    every_seconds: least seconds between two plain lines.
    clock: seconds now (injectable for tests).
    tty: force the bar (True) or plain lines (False); None: ask `stream`.
  """

  def __init__(self, label: str, stream: IO[str] | None = None,
               every_seconds: float = 10.0,
               clock: Callable[[], float] = time.monotonic,
               tty: bool | None = None):
    self.label = label
    self.stream = sys.stderr if stream is None else stream
    self.every_seconds, self._clock = every_seconds, clock
    self._tty = _isatty(self.stream) if tty is None else tty
    self._last: float | None = None
    self._bar = None

  def __call__(self, done: int, total: int | None) -> None:
    """Reports `done` of `total` bytes (total None: not known yet)."""
    finished = total is not None and done >= total
    if self._tty:
      self._update_bar(done, total, finished)
      return
    now = self._clock()
    if (not finished and self._last is not None
        and now - self._last < self.every_seconds):
      return
    self._last = now
    of = ('' if total is None
          else f' of {megabytes(total)} ({100 * done // max(total, 1)}%)')
    self.stream.write(f'{self.label} {megabytes(done)}{of}'
                      f'{" done" if finished else ""}\n')
    self.stream.flush()

  def _update_bar(self, done: int, total: int | None,
                  finished: bool) -> None:
    if self._bar is None:
      from tqdm import tqdm  # pylint: disable=g-import-not-at-top
      self._bar = tqdm(total=total, initial=done, desc=self.label, unit='B',
                       unit_scale=True, unit_divisor=1024, file=self.stream,
                       dynamic_ncols=True)
    elif done < self._bar.n or total != self._bar.total:
      self._bar.reset(total)  # a restart from zero, or the size now known
      self._bar.update(done)
    else:
      self._bar.update(done - self._bar.n)
    if finished:
      self._bar.close()
      self._bar = None
