"""Benchmarks of label reading: read rate and time per difficulty tier, real photos beside other readers, routing lines beside the PP-OCR recogniser."""
