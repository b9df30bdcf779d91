"""Fixtures shared across test directories."""

import pytest


@pytest.fixture(scope="session")
def seed_sum_data():
    """(X_train, Y_train, X_val, Y_val) of the seed-sum task, loaded once per session."""
    from dpfm.golden import tasks
    return tasks.seed_sum_data()
