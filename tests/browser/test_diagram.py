"""The read-only BPMN diagram (bpmn-js NavigatedViewer + js/diagram.js) in Chromium.

A tiny Flask app serves web/static (the vendored bpmn-js included, through web.assets) and the
bundled process files, so this does not depend on the application's pages.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask import Response
from flask import abort
from flask import render_template_string
from flask import send_from_directory

from tests.browser.conftest import ROOT
from tests.browser.conftest import LiveServer
from tests.browser.conftest import screenshot
from web import assets
from web.security import CONTENT_SECURITY_POLICY

pytestmark = pytest.mark.browser

PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <title>流程图</title>
  <link rel="icon" href="data:,">
  {% set a = asset_urls("diagram") %}
  {% for href in a.css %}<link rel="stylesheet" href="{{ href }}">
  {% endfor %}
  {% for src in a.js %}<script src="{{ src }}" defer></script>
  {% endfor %}
</head>
<body>
  <h1>{{ title }}</h1>
  <div id="diagram" data-bpmn-url="{{ url }}"
       {% if markers is not none %}data-bpmn-markers="{{ markers }}"{% endif %}></div>
</body>
</html>
"""

GENERAL_MARKERS = {
    "completed": ["assign_plan"],
    "active": ["rectify"],
    "overdue": [],
    "counts": {"rectify": {"open": 3, "overdue": 1}, "verify": {"open": 2, "overdue": 0}},
}


@pytest.fixture(scope="module")
def app() -> Flask:
    app = Flask(__name__, static_folder=str(ROOT / "web" / "static"), static_url_path="/static")
    assets.init_app(app)

    @app.after_request
    def csp(response: Response) -> Response:
        # The real app's policy (no inline script or style): bpmn-js must work under it.
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    # name -> (title, BPMN URL, data-bpmn-markers text or None)
    views: dict[str, tuple[str, str, str | None]] = {
        "general": ("一般隐患", "/processes/hazard_general.bpmn", json.dumps(GENERAL_MARKERS)),
        "major": ("重大隐患", "/processes/hazard_major.bpmn", None),
        "missing": ("不存在", "/processes/no_such_process.bpmn", None),
        "bad-markers": ("错误标记", "/processes/hazard_general.bpmn", "{oops"),
    }

    @app.get("/diagram/<name>")
    def diagram(name: str) -> str:
        if name not in views:
            abort(404)
        title, url, markers = views[name]
        return render_template_string(PAGE, title=title, url=url, markers=markers)

    @app.get("/modeler")
    def modeler() -> str:
        return render_template_string(MODELER_PAGE)

    @app.get("/processes/<path:filename>")
    def process_file(filename: str) -> Any:
        return send_from_directory(ROOT / "processes", filename, mimetype="application/xml")

    return app


MODELER_PAGE = """<!doctype html>
<html lang="zh-CN">
<head>
  <meta charset="utf-8">
  <title>流程建模</title>
  <link rel="icon" href="data:,">
  {% set a = asset_urls("modeler") %}
  {% for href in a.css %}<link rel="stylesheet" href="{{ href }}">
  {% endfor %}
  {% for src in a.js %}<script src="{{ src }}" defer></script>
  {% endfor %}
</head>
<body><div id="canvas" class="hl-modeler-test"></div></body>
</html>
"""


def open_diagram(page: Any, live_server: LiveServer, name: str, state: str = "ready") -> None:
    page.goto(live_server.url(f"/diagram/{name}"))
    page.wait_for_selector(f'#diagram[data-bpmn-state="{state}"]')


def element_classes(page: Any, element_id: str) -> list[str]:
    shape = page.locator(f'#diagram g.djs-element[data-element-id="{element_id}"]').first
    return shape.get_attribute("class").split()


def badges(page: Any, element_id: str) -> list[str]:
    selector = f'#diagram .djs-overlays[data-container-id="{element_id}"] .hl-badge'
    return page.locator(selector).all_text_contents()


def assert_logo_visible(page: Any) -> None:
    logo = page.locator("#diagram .bjs-powered-by")
    assert logo.count() == 1
    assert logo.is_visible()
    assert logo.get_attribute("href").rstrip("/") in ("http://bpmn.io", "https://bpmn.io")
    box = logo.bounding_box()
    assert box and box["width"] >= 20 and box["height"] >= 20
    container = page.locator("#diagram").bounding_box()
    assert container["x"] <= box["x"] and box["x"] + box["width"] <= container["x"] + container["width"]
    assert container["y"] <= box["y"] and box["y"] + box["height"] <= container["y"] + container["height"]
    # Not overlapped: what is drawn at the logo's centre is the logo itself.
    on_top = page.evaluate(
        """([x, y]) => {
            const hit = document.elementFromPoint(x, y);
            return !!(hit && hit.closest('.bjs-powered-by'));
        }""",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top, "the bpmn.io logo is covered (bpmn-js licence)"


def assert_fits(page: Any) -> None:
    vb = page.evaluate(
        """() => {
            const vb = document.getElementById('diagram').hlViewer.get('canvas').viewbox();
            return {x: vb.x, y: vb.y, width: vb.width, height: vb.height, inner: vb.inner};
        }"""
    )
    inner = vb["inner"]
    tolerance = 1
    assert vb["x"] - tolerance <= inner["x"]
    assert vb["y"] - tolerance <= inner["y"]
    assert inner["x"] + inner["width"] <= vb["x"] + vb["width"] + tolerance
    assert inner["y"] + inner["height"] <= vb["y"] + vb["height"] + tolerance


def test_general_diagram_with_markers_and_counts(page: Any, live_server: LiveServer) -> None:
    open_diagram(page, live_server, "general")
    assert page.locator("#diagram svg").count() >= 1
    assert page.locator("#diagram g.djs-shape").count() > 30
    assert "hl-active" in element_classes(page, "rectify")
    assert "hl-completed" in element_classes(page, "assign_plan")
    assert page.locator("#diagram .hl-overdue").count() == 0
    # The active task is drawn blue (the marker CSS applies to the shape's outline).
    stroke = page.evaluate(
        """() => getComputedStyle(document.querySelector(
            '#diagram g.djs-element[data-element-id="rectify"] .djs-visual > :first-child')).stroke"""
    )
    assert stroke == "rgb(21, 101, 192)"
    # Chinese labels are rendered as SVG text.
    labels = page.locator("#diagram .djs-visual text").all_text_contents()
    joined = "".join(labels)
    for name in ("限期整改", "整改验收", "隐患登记"):
        assert name in joined, f"label {name} not rendered"
    # Count badges: 3 open with 1 overdue on rectify, 2 open on verify.
    assert badges(page, "rectify") == ["3", "1"]
    assert badges(page, "verify") == ["2"]
    assert_logo_visible(page)
    # fitted, the whole loop would be unreadable: zoomed to 100 % on the active task instead
    assert page.get_attribute("#diagram", "data-bpmn-zoom") == "focus"
    assert_readable_on(page, "rectify")
    screenshot(page, "diagram-hazard_general")
    # 查看全图 fits the whole diagram, 聚焦办理环节 zooms back
    page.get_by_role("button", name="查看全图").click()
    assert page.get_attribute("#diagram", "data-bpmn-zoom") == "fit"
    assert_fits(page)
    page.get_by_role("button", name="聚焦办理环节").click()
    assert_readable_on(page, "rectify")
    assert_logo_visible(page)


def assert_readable_on(page: Any, element_id: str) -> None:
    """The viewer is at a readable scale with ``element_id`` in the middle of the container."""
    state = page.evaluate(
        """(id) => {
            const el = document.getElementById('diagram');
            const canvas = el.hlViewer.get('canvas');
            const vb = canvas.viewbox();
            const shape = el.hlViewer.get('elementRegistry').get(id);
            return {scale: vb.scale, cx: vb.x + vb.width / 2, cy: vb.y + vb.height / 2,
                    sx: shape.x + shape.width / 2, sy: shape.y + shape.height / 2};
        }""",
        element_id,
    )
    assert state["scale"] >= 0.8, state
    assert abs(state["cx"] - state["sx"]) < 2 and abs(state["cy"] - state["sy"]) < 2, state


def test_major_diagram(page: Any, live_server: LiveServer) -> None:
    open_diagram(page, live_server, "major")
    assert page.locator("#diagram g.djs-shape").count() > 30
    assert page.locator("#diagram .hl-active, #diagram .hl-completed, #diagram .hl-overdue").count() == 0
    joined = "".join(page.locator("#diagram .djs-visual text").all_text_contents())
    assert "主要负责人" in joined
    assert_logo_visible(page)
    assert_fits(page)  # nothing active: the whole diagram
    assert page.get_attribute("#diagram", "data-bpmn-zoom") == "fit"
    assert page.locator("#diagram .hl-diagram-toggle").count() == 0
    screenshot(page, "diagram-hazard_major")


def test_overdue_marker_and_missing_ids(page: Any, live_server: LiveServer) -> None:
    page.goto(live_server.url("/diagram/major"))
    page.wait_for_selector('#diagram[data-bpmn-state="ready"]')
    # Re-render the same container with other markers through the public API.
    result = page.evaluate(
        """() => {
            const el = document.getElementById('diagram');
            el.hlViewer.destroy();
            delete el.hlViewer;
            el.textContent = '';
            el.removeAttribute('data-bpmn-state');
            el.setAttribute('data-bpmn-markers', JSON.stringify({
                overdue: ['govern', 'no_such_task'], active: ['govern'], completed: ['principal_signoff'],
            }));
            return new Promise((resolve) => {
                el.addEventListener('hl:diagram-ready', (e) => resolve(e.detail.missing), {once: true});
                window.HazardDiagram.render(el);
            });
        }"""
    )
    assert result == ["no_such_task"]
    assert {"hl-overdue", "hl-active"} <= set(element_classes(page, "govern"))
    assert "hl-completed" in element_classes(page, "principal_signoff")
    # Overdue is declared after active in diagram.css, so it wins: red dashed outline.
    style = page.evaluate(
        """() => {
            const s = getComputedStyle(document.querySelector(
                '#diagram g.djs-element[data-element-id="govern"] .djs-visual > :first-child'));
            return [s.stroke, s.strokeDasharray];
        }"""
    )
    assert style[0] == "rgb(198, 40, 40)"
    assert style[1] != "none"
    screenshot(page, "diagram-hazard_major-overdue")


def test_failed_load_shows_chinese_message(page: Any, live_server: LiveServer, js_errors: list[str]) -> None:
    open_diagram(page, live_server, "missing", state="error")
    alert = page.locator('#diagram [role="alert"]')
    assert alert.is_visible()
    assert "流程图加载失败" in alert.text_content()
    assert "404" in alert.text_content()
    # The browser itself logs the 404; that one is expected, nothing else is.
    expected = [e for e in js_errors if "404" in e and "no_such_process.bpmn" in e]
    assert expected, js_errors
    js_errors[:] = [e for e in js_errors if e not in expected]


def test_bad_markers_show_chinese_message(page: Any, live_server: LiveServer) -> None:
    open_diagram(page, live_server, "bad-markers", state="error")
    assert "标记数据格式错误" in page.locator('#diagram [role="alert"]').text_content()


def test_modeler_bundle_works_under_the_csp(page: Any, live_server: LiveServer) -> None:
    """The vendored modeler imports, edits and exports a bundled process with no CSP violation.

    Smoke test for the future modeler page: the script is run through Playwright here, a page
    will use its own file under web/static/js (no inline script).
    """
    page.goto(live_server.url("/modeler"))
    page.wait_for_function("typeof window.BpmnJS === 'function'")
    xml = page.evaluate(
        """async () => {
            const canvas = document.getElementById('canvas');
            canvas.style.height = '700px';
            const modeler = new window.BpmnJS({container: canvas});
            window.modeler = modeler;
            const response = await fetch('/processes/hazard_general.bpmn');
            await modeler.importXML(await response.text());
            modeler.get('canvas').zoom('fit-viewport', 'auto');
            const registry = modeler.get('elementRegistry');
            modeler.get('modeling').updateLabel(registry.get('verify'), '整改验收（复核）');
            return (await modeler.saveXML({format: true})).xml;
        }"""
    )
    assert 'name="整改验收（复核）"' in xml
    assert "spiffworkflow:property" in xml  # extension elements survive a round trip
    assert page.locator("#canvas .djs-palette").is_visible()
    # Direct editing (double-click a task) uses contenteditable with styles set from script.
    page.locator('#canvas g.djs-element[data-element-id="rectify"]').dblclick()
    page.wait_for_selector("#canvas .djs-direct-editing-parent", state="visible")
    page.keyboard.press("Escape")
    logo = page.locator("#canvas .bjs-powered-by")
    assert logo.is_visible()
    screenshot(page, "modeler-hazard_general")
