"""The vendored asset pipeline (no browser): scripts/build_assets.py, its manifest, web.assets.

Not marked ``browser``: it runs in both database passes, it is quick.
"""

from __future__ import annotations

import json
import os
import re

import pytest
from flask import Flask

from tests.browser.conftest import ROOT
from tests.browser.conftest import VENDOR_MANIFEST
from web import assets

STATIC = ROOT / "web" / "static"


@pytest.fixture(scope="module")
def manifest() -> dict:
    if not VENDOR_MANIFEST.is_file():
        reason = "vendor assets are not built: npm ci && python3 scripts/build_assets.py (./bin/test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return json.loads(VENDOR_MANIFEST.read_text(encoding="utf-8"))


def test_manifest_matches_package_json(manifest: dict) -> None:
    pinned = json.loads((ROOT / "package.json").read_text(encoding="utf-8"))["dependencies"]
    assert manifest["packages"] == pinned
    assert re.fullmatch(r"2\.\d+\.\d+", pinned["htmx.org"])
    assert re.fullmatch(r"4\.\d+\.\d+", pinned["chart.js"])
    for path in manifest["files"]:
        assert (STATIC / path).is_file(), path
    for path in manifest["assets"].values():
        assert path in manifest["files"]


def test_every_bundle_file_exists(manifest: dict) -> None:
    for name, (styles, scripts) in assets.BUNDLES.items():
        for filename in (*styles, *scripts):
            assert (STATIC / filename).is_file(), f"bundle {name}: {filename}"
            if filename.startswith("vendor/"):
                assert filename in manifest["files"], filename


def test_licences_are_shipped(manifest: dict) -> None:
    for package in manifest["packages"]:
        assert any(
            p.startswith(f"vendor/{package}/") and p.rsplit("/", 1)[-1].startswith("LICENSE")
            for p in manifest["files"]
        ), package


def test_asset_urls_carry_content_hashes(manifest: dict) -> None:
    del manifest
    app = Flask(__name__, static_folder=str(STATIC))
    assets.init_app(app)
    with app.test_request_context():
        urls = assets.asset_urls("diagram", "htmx", "diagram")
        assert urls.js == (
            "/static/vendor/bpmn-js/bpmn-navigated-viewer.production.min.js?v=" + _v(urls.js[0]),
            "/static/js/diagram.js?v=" + _v(urls.js[1]),
            "/static/vendor/htmx.org/htmx.min.js?v=" + _v(urls.js[2]),
        )
        assert [u.split("?")[0] for u in urls.css] == [
            "/static/vendor/bpmn-js/assets/diagram-js.css",
            "/static/vendor/bpmn-js/assets/bpmn-js.css",
            "/static/css/diagram.css",
        ]
        assert assets.static_url("no/such/file.js") == "/static/no/such/file.js"
        with pytest.raises(KeyError):
            assets.asset_urls("no-such-bundle")
        html = app.jinja_env.from_string('{{ asset_urls("chart").js[0] }}').render()
        assert html.startswith("/static/vendor/chart.js/chart.umd.min.js?v=")


def _v(url: str) -> str:
    value = url.split("?v=", 1)[1]
    assert re.fullmatch(r"[0-9a-f]{12}", value)
    return value
