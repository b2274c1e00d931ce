"""Benchmarks of the routing core: decisions, reloads under load, and their generated workload."""
