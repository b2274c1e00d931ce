"""Benchmarks of the controller: end to end with the simulated PLC, crash, soak, records, line screen."""
