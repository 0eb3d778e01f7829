import os

# Torch and JAX share the GPU in one process: JAX must not take 75 % of it up front.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from parity_tests import harness  # noqa: E402


@pytest.fixture
def rng(request):
    """A fresh generator per test; the seed is printed so a failure can be replayed."""
    seed = int(os.environ.get("BI_SEED", np.random.SeedSequence().entropy % 2**32))
    print(f"{request.node.nodeid}: BI_SEED={seed}")
    return np.random.default_rng(seed)


@pytest.fixture(params=harness.BACKENDS, ids=lambda b: b.name)
def backend(request):
    return request.param
