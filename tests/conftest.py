"""Shared test set-up: every test runs with one intra-op thread. (The helper modules in this folder,
e.g. ``renderer_helpers``, import by name: pytest puts a rootless test folder on ``sys.path``.)"""

from __future__ import annotations

from collections.abc import Iterator

import huggingface_hub.constants
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests use tiny tensors: intra-op threads only add contention on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def hub_offline() -> Iterator[None]:
    """HF_HUB_OFFLINE=1 for a whole module (the constant is read at import, so patch it too); a module
    takes it with ``pytestmark = pytest.mark.usefixtures("hub_offline")``."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
        yield
