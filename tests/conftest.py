"""Shared test settings."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run torch on one intra-op thread (session-wide, so module-scoped fixtures that
    train are covered too): tiny networks gain nothing from more, and two test processes on
    two cores otherwise oversubscribe the CPU (a U-Net step was 50x slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
