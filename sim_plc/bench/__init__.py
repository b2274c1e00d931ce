"""Benchmarks of the simulated PLC: divert timing, label camera cost, event-loop wake-ups (timing.py)."""
