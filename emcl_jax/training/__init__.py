"""Training machinery shared by every method.

  stream      a task's batch stream as one jitted `lax.scan`
  memory      the reservoir replay buffer
  engine      the front door: train each task, evaluate every task after it
  programs    the compiled training and evaluation calls, their placement
  protocol    the host loop over tasks and the accuracy matrices it fills
  checkpoint  save after every task, resume bitwise
  workdir     one folder per run, keyed by its config hash
"""
