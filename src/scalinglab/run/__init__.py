"""Executing a study's runs: one protocol (executor.py), one backend per file."""
