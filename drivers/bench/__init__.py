"""Benchmarks of the PLC link: the bench (link.py) and the simulated PLC it runs against (peer.py)."""
