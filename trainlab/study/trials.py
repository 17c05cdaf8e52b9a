"""The runs of a tuned study (``[tune]``): each variant's trials, round by round, then its best setting's runs.

Both are pure functions of the study and the store's records, so the driver plans each round afresh from what
is stored and a killed study, run again, plans the same trials (their finished runs skipped) and goes on:

- :func:`planned_trials` — every trial whose settings can be decided now: the trials of a round follow from the
  variant's trials of the earlier rounds (:func:`trainlab.tune.search.rounds`), so a round is planned once the
  one before it has ended. A trial runs the variant's config with its settings, at the variant's first seed,
  and is marked as a trial (``RunSpec.trial``): the engine seals its test split.
- :func:`tuned_runs` — once every trial of a variant has ended, the variant's runs with the settings of its best
  trial (on the validation figure, :func:`trainlab.tune.choice.best_trial`), at the study's seeds, scored on
  test as any run is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import ValidationError

from trainlab.config import RunConfig
from trainlab.errors import ConfigError
from trainlab.measure.metrics import BY_KEY
from trainlab.records import OUTCOMES, RunRecord
from trainlab.study.expand import run_hash
from trainlab.study.messages import format_validation_error
from trainlab.study.overrides import set_dotted
from trainlab.study.spec import RunSpec, Study
from trainlab.tune.choice import Trial, best_trial
from trainlab.tune.config import Range, TuneConfig
from trainlab.tune.prune import PruneRule, median_bar
from trainlab.tune.search import History, rounds, settings_for


def with_settings(config: RunConfig, settings: dict[str, Any], what: str) -> RunConfig:
    """``config`` with the dotted ``settings`` applied, validated (``what`` names the run in an error)."""
    raw = config.model_dump(mode="json")  # round-trips: the same dump, so the same run id
    for key, value in settings.items():
        set_dotted(raw, key, value)
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as err:
        tried = ", ".join(f"{k} = {v!r}" for k, v in settings.items())
        raise ConfigError(f"tune: {what} at {tried}: {format_validation_error(err, None, '')}") from None


def variant_bases(study: Study) -> dict[str, RunSpec]:
    """Each variant's first run (its first seed), by name, in plan order: what its trials start from."""
    bases: dict[str, RunSpec] = {}
    for spec in study.runs:
        bases.setdefault(spec.variant, spec)
    return bases


def check_tune(study: Study) -> None:
    """Refuse a ``[tune]`` whose values a run cannot take (``data.batch_size`` at 0.5, a key no run has),
    before anything runs: every variant's config at both ends and the middle of each range, at each choice."""
    tune = study.config.tune
    if tune is None:
        return
    for name, base in variant_bases(study).items():
        for key, space in tune.params.items():
            values = [space.low, space.value(0.5), space.high] if isinstance(space, Range) else space
            for value in values:
                with_settings(base.config, {key: value}, f"variant '{name}'")
            if isinstance(space, Range) and not space.integer:
                # A fractional value (a third of the way along) shows a key that takes whole numbers only.
                try:
                    with_settings(base.config, {key: space.value(1 / 3)}, f"variant '{name}'")
                except ConfigError as exc:
                    raise ConfigError(f"{exc}; {key} takes whole numbers: add integer = true to its range") from None


def higher_is_better(tune: TuneConfig, task: str) -> bool:
    """Whether a larger value of the trials' figure is better."""
    return BY_KEY[tune.metric_for(task)].better != "lower"


def trial_value(tune: TuneConfig, record: RunRecord | None) -> float | None:
    """A finished trial's validation figure; None for a trial that failed, diverged, was pruned (its figure is a
    shorter run's) or recorded none."""
    if record is None or record.status != "done" or record.pruned_epoch is not None:
        return None
    return record.figure(tune.metric_for(str(record.results.get("task") or "classification")))


def _curve(record: RunRecord | None) -> list[float | None]:
    """A trial's per-epoch validation curve as it recorded it (``prune_curve``), empty without one."""
    got = record.results.get("prune_curve") if record is not None else None
    return [v if isinstance(v, int | float) else None for v in got] if isinstance(got, list) else []


def _rule(tune: TuneConfig, task: str, earlier: list[RunRecord | None]) -> PruneRule | None:
    """The bar of a trial planned after the ``earlier`` rounds' trials (None without pruning)."""
    if tune.prune == "none":
        return None
    key, running = tune.epoch_key(task)
    bar = median_bar([_curve(r) for r in earlier if r is not None and r.status == "done"])
    return PruneRule(key, running, higher_is_better(tune, task), bar, tune.prune_warmup)


def _trial_spec(base: RunSpec, index: int, settings: dict[str, Any], prune: PruneRule | None = None) -> RunSpec:
    config = with_settings(base.config, settings, f"variant '{base.variant}', trial {index + 1}")
    return RunSpec(
        study=base.study,
        variant=base.variant,
        repeat=0,  # every trial runs at the variant's first seed
        overrides=base.overrides,
        config=config,
        # The trial's index is part of its identity: two trials may draw the same settings from a choice list.
        run_id=run_hash(config, f"{base.variant} trial {index}"),
        trial=index,
        tuned=settings,
        prune=prune,
    )


def planned_trials(study: Study, records: list[RunRecord]) -> list[RunSpec]:
    """Every trial that can be decided from ``records``: per variant, the rounds whose earlier rounds have all
    ended (done, failed, diverged or skipped), in variant then trial order."""
    tune = study.config.tune
    if tune is None:
        return []
    by_id = {r.run_id: r for r in records}
    out: list[RunSpec] = []
    for base in variant_bases(study).values():
        history: History = []
        earlier: list[RunRecord | None] = []  # the variant's trials of earlier rounds, as stored
        for batch in rounds(tune):
            task = _task(by_id, out)
            direction = "maximize" if higher_is_better(tune, task) else "minimize"
            rule = _rule(tune, task, earlier)  # every trial of a round gets the same bar
            specs = [_trial_spec(base, i, settings_for(tune, i, history, direction), rule) for i in batch]
            out += specs
            ended = [by_id.get(s.run_id) for s in specs]
            if any(r is None or r.status not in OUTCOMES for r in ended):
                break  # the next round waits for this one
            history += [
                (s.tuned, trial_value(tune, r), _curve(r) if r is not None and r.pruned_epoch is not None else None)
                for s, r in zip(specs, ended)
            ]
            earlier += ended
    return out


def _task(by_id: dict[str, RunRecord], specs: list[RunSpec]) -> str:
    """The dataset's task as the trials so far recorded it (classification until one says otherwise)."""
    for spec in specs:
        record = by_id.get(spec.run_id)
        if record is not None and record.results.get("task"):
            return str(record.results["task"])
    return "classification"


def trials_of(study: Study, records: list[RunRecord]) -> dict[str, list[Trial]]:
    """Per variant, its trials as stored (settings and validation figure), in trial order: those that ended."""
    tune = study.config.tune
    out: dict[str, list[Trial]] = {}
    by_id = {r.run_id: r for r in records}
    for spec in planned_trials(study, records):
        record = by_id.get(spec.run_id)
        if record is not None and record.status in OUTCOMES and spec.trial is not None and tune is not None:
            out.setdefault(spec.variant, []).append(Trial(spec.trial, spec.tuned, trial_value(tune, record)))
    return out


def tuned_runs(study: Study, records: list[RunRecord]) -> tuple[list[RunSpec], list[str]]:
    """The study's runs of every variant whose trials have all ended, with the settings of its best trial; and
    the names of the variants none of whose trials recorded a figure (they get no runs)."""
    tune = study.config.tune
    if tune is None:
        return list(study.runs), []
    trials = trials_of(study, records)
    task = _task({r.run_id: r for r in records}, planned_trials(study, records))
    best: dict[str, Trial | None] = {}
    for name, got in trials.items():
        if len(got) == tune.trials:
            best[name] = best_trial(got, higher_is_better(tune, task))
    runs: list[RunSpec] = []
    for spec in study.runs:
        chosen = best.get(spec.variant)
        if chosen is None:
            continue
        config = with_settings(spec.config, chosen.settings, f"variant '{spec.variant}'")
        runs.append(
            dataclasses.replace(spec, config=config, run_id=run_hash(config, spec.variant), tuned=chosen.settings)
        )
    failed = [name for name, chosen in best.items() if chosen is None]
    return runs, failed


__all__ = [
    "check_tune",
    "planned_trials",
    "trial_value",
    "trials_of",
    "tuned_runs",
    "variant_bases",
    "with_settings",
]
