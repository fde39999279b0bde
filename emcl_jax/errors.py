"""Errors that carry a one-line message naming the problem and the fix."""


class DataError(Exception):
  """Missing, unreadable or corrupt benchmark data."""


class NonFiniteLossError(Exception):
  """Training produced a NaN or infinite loss."""


def first_line(e: BaseException) -> str:
  """The first line of an exception's message, or its type's name when the
  message is empty: the reason quoted inside a one-line error."""
  text = str(e).strip()
  return text.splitlines()[0] if text else type(e).__name__


class ProcessLostError(RuntimeError):
  """Another process of a multi-process run stopped (or cannot be
  reached) while this one waited for it."""


class JobError(RuntimeError):
  """A submitit job that ended without a result (killed, cancelled)."""
