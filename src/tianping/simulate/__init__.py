"""The marketplace simulator: realistic event data with known ground truth.

Pure modules (no I/O) draw the world and each chunk of buyers; :mod:`tianping.simulate.service`
writes the tables to the warehouse and Parquet. ``docs/simulator.md`` documents the model.
"""
