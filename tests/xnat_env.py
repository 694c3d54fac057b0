"""Point in-process ``xnatnode`` commands at an xnatsim through the environment, as XNAT's
Container Service does for a launched job."""

from __future__ import annotations

import pytest
from xnatsim.testing import Server


def point_xnatnode_at(server: Server, monkeypatch: pytest.MonkeyPatch) -> Server:
    """Set XNAT_HOST/XNAT_USER/XNAT_PASS to ``server``'s URL and admin account; ``server``."""
    monkeypatch.setenv("XNAT_HOST", server.url)
    monkeypatch.setenv("XNAT_USER", server.user)
    monkeypatch.setenv("XNAT_PASS", server.password)
    return server
