"""Test set-up: the real-parts harness lives in tests/harness (see its __init__)."""

pytest_plugins = ["harness.fixtures"]
