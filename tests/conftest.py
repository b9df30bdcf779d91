"""Fixtures shared across test directories."""

import pytest


@pytest.fixture(scope="session")
def seed_sum_data():
    """(X_train, Y_train, X_val, Y_val) of the seed-sum task, loaded once per session."""
    from dpfm.golden.tasks import seed_sum_data as load
    return load()
