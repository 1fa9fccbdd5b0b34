"""`/docs` and `/redoc` load every asset from the service itself, so they work without a network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from harness.app import create_app
from harness.database.migrate import upgrade
from harness.settings import Settings

pytestmark = [pytest.mark.tier1]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_need_no_cdn(tmp_path: Path, page: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'h.db'}")
    upgrade(settings.resolved_database_url)
    with TestClient(create_app(settings)) as client:
        html = client.get(page)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets, html.text
        assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
        for asset in assets:
            if asset.endswith((".js", ".css")):
                assert client.get(asset).status_code == 200, asset
