"""The engine: one run's training loop, its typed events and the sinks that record them, executors, the runner.

``loop.execute_run`` trains one run and emits events; ``executors`` run a study's runs in this process or in
child processes and carry the events back; ``runner`` checks a study, skips finished runs and dispatches the
others; ``sinks.StoreSink`` records events in the store (the driver is its only writer).
"""
