"""URLs of the browser assets (vendored npm packages and our own scripts) for templates.

The vendored files are copied from node_modules into ``web/static/vendor/`` by
``scripts/build_assets.py`` (``./bin/run`` and ``./bin/test`` run it); nothing comes from a CDN.
Templates ask for bundles by name, in the order their scripts must load::

    {% set assets = asset_urls("diagram") %}
    {% for href in assets.css %}<link rel="stylesheet" href="{{ href }}">{% endfor %}
    {% for src in assets.js %}<script src="{{ src }}" defer></script>{% endfor %}

Each URL carries ``?v=<content hash>`` so caches (intranet proxies included) never serve a stale
file after an upgrade; a file that is missing (assets not built) gets no ``v`` and answers 404.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache

from flask import Flask
from flask import current_app
from flask import url_for

# bundle -> (stylesheets, scripts), paths relative to the static folder, in load order.
BUNDLES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # Read-only diagram with task-state markers: <div data-bpmn-url=… data-bpmn-markers=…>.
    "diagram": (
        (
            "vendor/bpmn-js/assets/diagram-js.css",
            "vendor/bpmn-js/assets/bpmn-js.css",
            "css/diagram.css",
        ),
        (
            "vendor/bpmn-js/bpmn-navigated-viewer.production.min.js",
            "js/diagram.js",
        ),
    ),
    # The in-browser modeler (global BpmnJS is the Modeler; do not combine with "diagram").
    # js/modeler.js starts on a page with <div id="hl-modeler" …> (design_diagrams/edit.html) only.
    "modeler": (
        (
            "vendor/bpmn-js/assets/diagram-js.css",
            "vendor/bpmn-js/assets/bpmn-js.css",
            "vendor/bpmn-js/assets/bpmn-font/css/bpmn.css",
            "css/modeler.css",
        ),
        (
            "vendor/bpmn-js/bpmn-modeler.production.min.js",
            "js/modeler.js",
        ),
    ),
    "htmx": ((), ("vendor/htmx.org/htmx.min.js",)),
    "chart": ((), ("vendor/chart.js/chart.umd.min.js",)),
    # Swagger UI for the API docs page; configure it with validatorUrl: null (no outside calls).
    "swagger-ui": (
        ("vendor/swagger-ui-dist/swagger-ui.css",),
        (
            "vendor/swagger-ui-dist/swagger-ui-bundle.js",
            "vendor/swagger-ui-dist/swagger-ui-standalone-preset.js",
        ),
    ),
}


@dataclass(frozen=True)
class AssetUrls:
    css: tuple[str, ...]
    js: tuple[str, ...]


@lru_cache(maxsize=256)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    del mtime_ns, size  # part of the cache key only: a rebuilt file gets a new digest
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()[:12]


def static_url(filename: str) -> str:
    """``url_for('static', filename=…)`` plus ``v=<content hash>`` when the file exists."""
    path = os.path.join(current_app.static_folder or "", filename)
    try:
        st = os.stat(path)
    except OSError:
        return url_for("static", filename=filename)
    return url_for("static", filename=filename, v=_digest(path, st.st_mtime_ns, st.st_size))


def asset_urls(*bundles: str) -> AssetUrls:
    """Stylesheet and script URLs of the named bundles, in order and without duplicates.

    Raises KeyError for an unknown bundle name (a template typo should fail loudly).
    """
    css: list[str] = []
    js: list[str] = []
    for name in bundles:
        styles, scripts = BUNDLES[name]
        for out, files in ((css, styles), (js, scripts)):
            for filename in files:
                url = static_url(filename)
                if url not in out:
                    out.append(url)
    return AssetUrls(css=tuple(css), js=tuple(js))


def init_app(app: Flask) -> None:
    """Make ``asset_urls`` and ``static_url`` available in every template."""
    app.add_template_global(asset_urls, "asset_urls")
    app.add_template_global(static_url, "static_url")
