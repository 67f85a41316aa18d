"""Repository-wide pytest settings for the notebooks that nbmake runs (`make test`).

nbmake's own ``--nbmake-timeout`` bounds each *cell*; this gives each *notebook* a time budget
(pytest-timeout), so that one slow chapter fails clearly instead of stalling CI.
"""

import os

import pytest

NOTEBOOK_TIMEOUT = int(os.environ.get("GMMLIB_NOTEBOOK_TIMEOUT", "600"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if getattr(item, "nbmake", False):
            item.add_marker(pytest.mark.timeout(NOTEBOOK_TIMEOUT))
