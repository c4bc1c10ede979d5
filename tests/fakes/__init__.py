"""Shared fakes, fixtures and data writers for the tests (only fakes at the hardware boundary)."""
