"""Experiments: deterministic assignment, stored definitions and warehouse-native analysis.

Public entry points: :class:`tianping.Client` (offline SDK), :mod:`.assignment`
(``assign``, ``assign_batch``, ``Snapshot``), :mod:`.service` (definitions in the store) and
:mod:`.analysis` (sufficient statistics from the warehouse).
"""
