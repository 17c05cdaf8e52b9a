"""The store as a sink: the driver process records every run's events, and is the store's only writer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from trainlab.engine.events import EpochEnded, Event, RunEnded, RunStarted
from trainlab.store import Store

if TYPE_CHECKING:
    from trainlab.study import RunSpec


class StoreSink:
    """Commits a run's events to the study's store, each in its own transaction.

    RunStarted marks the run running with its environment and profile and sets its epoch rows to the epochs the
    run continues from (a checkpoint's rows: an epoch the driver missed before a crash is restored, none is
    repeated); EpochEnded adds one row; RunEnded records the outcome.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def event(self, spec: RunSpec, event: Event) -> None:
        if isinstance(event, RunStarted):
            self.store.start_run(spec.run_id, env=event.env, profile=event.profile)
            self.store.replace_epochs(spec.run_id, [row.to_record() for row in event.history])
        elif isinstance(event, EpochEnded):
            self.store.add_epoch(spec.run_id, event.row.to_record())
        elif isinstance(event, RunEnded):
            o = event.outcome
            self.store.finish_run(spec.run_id, o.status, o.results, o.error, o.detail)
