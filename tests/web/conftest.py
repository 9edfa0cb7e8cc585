"""One `picasso serve` on the bundled demo models for every test that needs a real
server (started once per session)."""

from __future__ import annotations

import pytest

from web.live import start_server, stop_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    process, url = start_server(tmp_path_factory.mktemp("live-data"))
    yield url
    stop_server(process)
