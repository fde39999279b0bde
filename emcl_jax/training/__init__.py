"""Training machinery shared by every method.

  stream      a task's batch stream as one jitted `lax.scan`
  memory      the reservoir replay buffer
  engine      the protocol: train each task, evaluate every task after it
  checkpoint  save after every task, resume bitwise
  workdir     one folder per run, keyed by its config hash
"""
