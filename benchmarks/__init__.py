"""Benchmarks that print figures (run as ``python -m benchmarks.<name>``); see README.md here."""
