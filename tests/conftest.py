import os
import tempfile

import numpy as np
import pytest

# Hermetic: token shards and tokenizers built by the tests go to a fresh cache, never the user's.
os.environ.setdefault("SCALINGLAB_CACHE", tempfile.mkdtemp(prefix="scalinglab-test-cache-"))

from scalinglab.simulate import isoflop_runs

TRUE_SETS = {
    "chinchilla": {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28},
    "epoch": {"E": 1.82, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658},
    "steep-N": {"E": 2.2, "A": 1500.0, "B": 300.0, "alpha": 0.5, "beta": 0.25},
}


@pytest.fixture(scope="session")
def sim_runs():
    """Simulated IsoFLOP runs per known parameter set: 10 budgets x 15 sizes, 1% noise."""
    return {name: isoflop_runs(p, budgets=np.geomspace(1e18, 1e21, 10), sizes_per_budget=15,
                               noise=0.01, seed=7)
            for name, p in TRUE_SETS.items()}
