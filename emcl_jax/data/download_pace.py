"""A download's limits and clock: an overall deadline and a low-speed
abort (bytes per second averaged over a window, as curl's speed limit and
speed time), set by `fetch`'s arguments or by environment variables."""

import collections
import math
import os
import time
from typing import Callable, NamedTuple

from emcl_jax.errors import DataError

TIMEOUT_ENV = 'EMCL_JAX_DOWNLOAD_TIMEOUT'
LOW_SPEED_LIMIT_ENV = 'EMCL_JAX_LOW_SPEED_LIMIT'
LOW_SPEED_TIME_ENV = 'EMCL_JAX_LOW_SPEED_TIME'
MIRROR_ENV = 'EMCL_JAX_MIRROR'  # the mirror (download.url_of)
TIMEOUT_S = 10.0  # the longest wait for a connection or one read


class Limits(NamedTuple):
  """How long a download may take, and how slow it may get."""
  timeout: float  # seconds for the whole download, all requests; 0: none
  low_speed_limit: float  # bytes per second; 0: no low-speed abort
  low_speed_time: float  # seconds the speed is averaged over


# (keyword of `fetch`, variable, default, whether 0 is allowed, meaning)
_LIMITS = (
    ('timeout', TIMEOUT_ENV, 3600.0, True,
     'a number of seconds >= 0 (0: no deadline)'),
    ('low_speed_limit', LOW_SPEED_LIMIT_ENV, 1024.0, True,
     'a number of bytes per second >= 0 (0: no low-speed abort)'),
    ('low_speed_time', LOW_SPEED_TIME_ENV, 30.0, False,
     'a number of seconds > 0'),
)


def _number(value: object, zero_allowed: bool) -> float | None:
  """`value` (a number or its text) as a finite float >= 0 (> 0 unless
  `zero_allowed`), or None when it is not one (a bool is not a number)."""
  if isinstance(value, bool):
    return None
  try:
    number = float(value)  # type: ignore[arg-type]
  except (TypeError, ValueError):
    return None
  if not math.isfinite(number) or number < 0 or (
      number == 0 and not zero_allowed):
    return None
  return number


def download_limits(timeout: float | None = None,
                    low_speed_limit: float | None = None,
                    low_speed_time: float | None = None) -> Limits:
  """The limits of a download: each argument if given, else its variable
  ($EMCL_JAX_DOWNLOAD_TIMEOUT, $EMCL_JAX_LOW_SPEED_LIMIT,
  $EMCL_JAX_LOW_SPEED_TIME), else its default (3600 s, 1024 bytes/s, 30 s).

  Raises:
    DataError: a value that is not a number in range, naming the argument
      or the variable and what a valid value looks like.
  """
  given = {'timeout': timeout, 'low_speed_limit': low_speed_limit,
           'low_speed_time': low_speed_time}
  values = []
  for keyword, variable, default, zero_allowed, meaning in _LIMITS:
    value = given[keyword]
    if value is None and variable not in os.environ:
      values.append(default)
      continue
    if value is None:
      value = os.environ[variable]
      where, fix = f'{variable}={value!r}', 'set it to'
      end = ', or unset it'
    else:
      where, fix, end = f'{keyword}={value!r}', 'pass', ''
    number = _number(value, zero_allowed)
    if number is None:
      raise DataError(f'{where} is not {meaning}; {fix} a number such as '
                      f'{default:g}{end}')
    values.append(number)
  return Limits(*values)


def window_speed(marks: collections.deque, now: float,
                 window: float) -> float | None:
  """Bytes per second received since the newest mark at least `window`
  seconds old, None while no mark is that old. `marks` holds (time, bytes
  received so far), oldest first; the marks older than that one are dropped
  (they are never needed again)."""
  while len(marks) > 1 and marks[1][0] <= now - window:
    marks.popleft()
  since, before = marks[0]
  if since > now - window:
    return None
  return (marks[-1][1] - before) / max(now - since, 1e-9)


class Pace:
  """The clock of one download, over all its requests: its deadline, and
  its speed over the low-speed window.

  Args:
    limits: the download's `Limits`.
    clock: seconds now (injectable for tests).
  """

  def __init__(self, limits: Limits,
               clock: Callable[[], float] = time.monotonic):
    self.limits, self._clock = limits, clock
    self.start = clock()
    self._marks = collections.deque([(self.start, 0)])
    self._received = 0

  def add(self, n: int) -> None:
    """Counts `n` bytes received now. The marks stay a hundredth of the
    window apart (the newest moves up), so a fast download keeps a few
    hundred, not one per read."""
    self._received += n
    if not self.limits.low_speed_limit:
      return
    now, marks = self._clock(), self._marks
    step = self.limits.low_speed_time / 100
    if len(marks) > 1 and now - marks[-2][0] < step:
      marks[-1] = (now, self._received)
    else:
      marks.append((now, self._received))

  def wait_s(self) -> float:
    """The longest a connection or one read may wait for the server:
    TIMEOUT_S, or less when the low-speed window or the deadline is
    nearer."""
    waits = [TIMEOUT_S]
    if self.limits.low_speed_limit:
      waits.append(self.limits.low_speed_time)
    if self.limits.timeout:
      waits.append(self.limits.timeout - (self._clock() - self.start))
    return max(min(waits), 0.01)

  def due(self) -> tuple[str, str] | None:
    """(why, the fix) when the download must stop now: it is past its
    deadline, or its speed over the last low-speed window is under the
    limit. None while it may go on."""
    now = self._clock()
    timeout, limit, window = self.limits
    if timeout and now - self.start >= timeout:
      return (f'it took more than {TIMEOUT_ENV}={timeout:g} s',
              f'set {TIMEOUT_ENV} higher (0: no deadline)')
    speed = window_speed(self._marks, now, window) if limit else None
    if speed is not None and speed < limit:
      return (f'{speed:.1f} bytes/s over the last {window:g} s '
              f'({LOW_SPEED_TIME_ENV}), under {LOW_SPEED_LIMIT_ENV}='
              f'{limit:g}', f'set {MIRROR_ENV} to a faster mirror, or '
              f'{LOW_SPEED_LIMIT_ENV} lower (0: no low-speed abort)')
    return None
