"""Shared test set-up: every test runs with one intra-op thread. (The helper modules in this folder,
e.g. ``renderer_helpers``, import by name: pytest puts a rootless test folder on ``sys.path``.)"""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests use tiny tensors: intra-op threads only add contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
