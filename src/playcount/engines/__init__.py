"""Engines other than the embedded default. `playcount.engine` chooses one (`connect`).

Each module imports its heavy backend (pyspark) only inside the functions that need it.
"""
