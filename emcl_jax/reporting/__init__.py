"""What a run reports, and how.

  metrics  ACC, BWT, LA (Eq 22, 23) from the accuracy matrix
  writers  per-task records to JSON lines, TensorBoard, CSV, the console
  tables   the paper's tables from results files
  figures  the paper's figures (matplotlib, imported only here)
"""
