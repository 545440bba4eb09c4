"""``clearchain bench``: the executor, audit and network benchmarks, the multi-process load
bench with its client processes and SQLite baseline, and the py-spy profiler hook
(docs/BENCHMARKS.md holds the method and the figures)."""
