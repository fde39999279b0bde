"""Training machinery that runs any method (`base.Method`).

  engine      the front door: train each task, evaluate every task after it
  programs    the compiled training and evaluation calls, their placement
  protocol    the host loop over tasks and the accuracy matrices it fills
  grid        hyper-parameters as traced arrays: a grid of settings as one
              program
  multihost   several JAX processes: results back to the host, waits
  checkpoint  save after every task, resume bitwise
  workdir     one folder per run, keyed by its config hash
"""
