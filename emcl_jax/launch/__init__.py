"""The command-line launchers (absl flags), installed as console scripts:

  emcl-run        run.py        one run (or seeds together) in its folder
  emcl-reproduce  reproduce.py  datasets x methods x seeds, tables, figures
  emcl-sweep      sweep.py      a grid of settings x seeds, one table
  emcl-summarize  summarize.py  the table of a work directory

`python experiments/<name>.py` runs the same code. The studies of the
paper's claims (bench.py, cost.py, grid_cost.py, front.py) are scripts of
experiments/ only, not part of the package.
"""
