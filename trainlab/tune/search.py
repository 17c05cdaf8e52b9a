"""The settings each trial runs: a pure function of the ``[tune]`` config, the trial's index and the variant's
finished trials, so that a resumed study asks for the same settings it asked before (the store is the record).

- ``quasirandom``: point ``index`` of a scrambled Sobol sequence over the ranges (scipy's ``qmc.Sobol``, seeded
  by ``tune.seed``). It depends on nothing else, so every variant is tried at the same settings — a paired
  design that takes the settings' luck out of the comparison — and all of a variant's trials can run at once.
  AlgoPerf's external tuning uses quasirandom search for the same reasons.
- ``tpe``: the first trials are the Sobol points (better coverage than random start-up draws); each later trial
  is Optuna's TPE told every finished trial of the variant (ask/tell on an in-memory study rebuilt from the
  store, its sampler seeded by ``tune.seed`` and the trial's index), one trial per variant per round.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

from trainlab.errors import ConfigError
from trainlab.tune.config import Range, TuneConfig

Direction = Literal["maximize", "minimize"]
# One trial: its settings, its validation figure (None: it failed, diverged, was pruned or recorded no figure)
# and, for a pruned trial, its curve (per epoch, up to where it stopped; else None).
History = list[tuple[dict[str, Any], float | None, list[float | None] | None]]


def startup_trials(tune: TuneConfig) -> int:
    """Trials drawn from the Sobol sequence before TPE takes over: a third of the budget, at least 2."""
    if tune.sampler == "quasirandom":
        return tune.trials
    return min(tune.trials, max(2, tune.trials // 3))


def rounds(tune: TuneConfig) -> list[list[int]]:
    """The trial indices of each round, in order: a round's trials are chosen together and run side by side;
    the next round is chosen once they have finished (quasirandom: one round of every trial; with pruning, the
    first third of them — at least 2 — then the rest, judged against the first round's curves)."""
    if tune.sampler == "quasirandom" and tune.prune != "none":
        first = min(tune.trials, max(2, tune.trials // 3))
        return [list(range(first)), *([list(range(first, tune.trials))] if first < tune.trials else [])]
    first = startup_trials(tune)
    return [list(range(first)), *([i] for i in range(first, tune.trials))]


def sobol_points(tune: TuneConfig, n: int) -> list[dict[str, Any]]:
    """The first ``n`` settings of the scrambled Sobol sequence over ``tune.params`` (a list: index by the
    point's coordinate; a range: :meth:`Range.value`)."""
    from scipy.stats import qmc  # heavy (scipy.stats: ~0.3 s), and only a tuned study needs it

    keys = list(tune.params)
    with warnings.catch_warnings():
        # "The balance properties of Sobol' points require n to be a power of 2": a prefix of the sequence is
        # still its best n points, which is what a budget of n trials gets.
        warnings.simplefilter("ignore", UserWarning)
        unit = qmc.Sobol(d=len(keys), scramble=True, seed=tune.seed).random(n)  # (n, len(keys)) in [0, 1)
    return [{k: _at(tune.params[k], float(u)) for k, u in zip(keys, row)} for row in unit]


def _at(space: Range | list[Any], u: float) -> Any:
    if isinstance(space, Range):
        return space.value(u)
    return space[min(int(u * len(space)), len(space) - 1)]


def settings_for(tune: TuneConfig, index: int, history: History, direction: Direction = "maximize") -> dict[str, Any]:
    """The settings of trial ``index`` (0-based) given the variant's trials of earlier rounds (``history``, in
    trial order)."""
    if index < startup_trials(tune):
        return sobol_points(tune, index + 1)[index]
    return _tpe(tune, index, history, direction)


def _tpe(tune: TuneConfig, index: int, history: History, direction: Direction) -> dict[str, Any]:
    try:
        import optuna  # optional (the tune extra), and heavy: only a TPE study imports it
    except ImportError:
        raise ConfigError(
            "tune.sampler = 'tpe' needs Optuna: pip install 'trainlab[tune]' (or optuna), or use"
            " sampler = 'quasirandom'"
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dists = {k: _distribution(optuna, space) for k, space in tune.params.items()}
    # A choice is told and asked as its index: its values may be lists (model.hidden), which Optuna cannot hold.
    as_index = {k: space for k, space in tune.params.items() if isinstance(space, list)}
    # A seed per trial index: the same index after the same history asks the same settings, resumed or not.
    sampler = optuna.samplers.TPESampler(seed=tune.seed * 1_000_003 + index, n_startup_trials=0)
    study = optuna.create_study(direction=direction, sampler=sampler)
    states = optuna.trial.TrialState
    for settings, value, curve in history:
        params = {k: as_index[k].index(v) if k in as_index else v for k, v in settings.items()}
        # A pruned trial is told as pruned, with its curve: TPE ranks it by its last figure, as Optuna's do.
        steps = {e: v for e, v in enumerate(curve or []) if v is not None}
        state = states.COMPLETE if value is not None else states.PRUNED if steps else states.FAIL
        told = optuna.trial.create_trial(
            params=params, distributions=dists, value=value, state=state,
            intermediate_values=steps if state == states.PRUNED else None,
        )  # fmt: skip
        study.add_trial(told)
    asked = study.ask(dists).params
    return {k: as_index[k][v] if k in as_index else v for k, v in asked.items()}


def _distribution(optuna: Any, space: Range | list[Any]) -> Any:
    if isinstance(space, list):
        return optuna.distributions.CategoricalDistribution(tuple(range(len(space))))
    if space.integer:
        return optuna.distributions.IntDistribution(int(space.low), int(space.high), log=space.log)
    return optuna.distributions.FloatDistribution(float(space.low), float(space.high), log=space.log)


__all__ = ["Direction", "History", "rounds", "settings_for", "sobol_points", "startup_trials"]
