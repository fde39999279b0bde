"""Errors that carry a one-line message naming the problem and the fix."""


class DataError(Exception):
  """Missing, unreadable or corrupt benchmark data."""


class NonFiniteLossError(Exception):
  """Training produced a NaN or infinite loss."""
