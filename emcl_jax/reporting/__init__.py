"""What a run reports, and how.

  metrics  ACC, BWT, LA (Eq 22, 23) from the accuracy matrix
  writers  per-task records to JSON lines, TensorBoard, CSV, the console
  tables   the paper's tables from results files
  front    EMCL's accuracy against training cost over glances
  figures  the paper's figures (matplotlib, imported only here)
"""
