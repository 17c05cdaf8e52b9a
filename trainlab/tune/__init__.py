"""Tuning every variant with the same budget: the ``[tune]`` section, its search and the choice of a setting.

``config`` owns the section's typed config (:class:`TuneConfig`); ``search`` turns it into the settings each
trial runs (a scrambled Sobol sequence, or Optuna's TPE told the finished trials); ``choice`` picks a variant's
best trial on the validation figure and says when the best value lies at the edge of its range. The trials
themselves are ordinary runs, planned by :mod:`trainlab.study.trials` and run by the engine with the test split
sealed.
"""

from trainlab.tune.choice import Trial, at_edge, best_trial
from trainlab.tune.config import Range, TuneConfig
from trainlab.tune.search import settings_for

__all__ = ["Range", "Trial", "TuneConfig", "at_edge", "best_trial", "settings_for"]
