"""Horse races (赛马): strategies compete, traffic and budget flow to the best, the winner is
confirmed on fresh units.

Pure modules (no database, warehouse, web or CLI imports): :mod:`~tianping.races.posterior`
(posteriors from per-arm sufficient statistics), :mod:`~tianping.races.thompson` (seeded Monte
Carlo chance to be best, Thompson and top-two Thompson allocation, expected regret),
:mod:`~tianping.races.allocation` (shares and money budgets with floors and caps),
:mod:`~tianping.races.race` (the step, elimination, stopping and confirmation rules),
:mod:`~tianping.races.simulation` (seeded simulated races for validation) and
:mod:`~tianping.races.report` (terminal/JSON/HTML renderings). The store side is
:mod:`~tianping.races.models`, :mod:`~tianping.races.repository` and
:mod:`~tianping.races.service`. See ``docs/races.md``.
"""
