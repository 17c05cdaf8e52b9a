"""Measurement: small objects the training loop calls directly (no hooks), each stating its units.

- :mod:`clock` — epoch time split into data time and compute time (CPU clock or CUDA events).
- :mod:`memory` — peak memory during training (CUDA allocator or the process's peak resident set).
- :mod:`latency` — batch-1 inference pass, latency percentiles, throughput.
- :mod:`complexity` — parameters, MACs/FLOPs, sizes, layer table, non-zero gradients after one step.
- :mod:`hardware` — the machine and library versions a result was measured on.
"""
