/*
 * diagram.js: BPMN diagrams with task-state markers, no bundler.
 *
 * Needs the bpmn-js NavigatedViewer global `BpmnJS` (vendor/bpmn-js/bpmn-navigated-viewer.production.min.js)
 * and its CSS, plus css/diagram.css; web/assets.py lists them in order ("diagram" bundle).
 *
 * Markup:
 *   <div class="hl-diagram" data-bpmn-url="/…/bpmn"
 *        data-bpmn-markers='{"completed": ["assign_plan"], "active": ["rectify"], "overdue": [],
 *                            "counts": {"rectify": {"open": 3, "overdue": 1}}}'></div>
 *
 * Version comparisons (web/pages/design_versions.py) use three more marker lists: "added",
 * "changed" and "removed" (classes hl-added, hl-changed, hl-removed). Without overdue/active
 * markers the focus zoom centres on those; data-bpmn-focus-label names the zoom button then
 * (default "聚焦办理环节").
 *
 * Every such element found at DOMContentLoaded, and in content swapped in by htmx, gets a viewer.
 * State is in data-bpmn-state: "loading", then "ready" or "error". When ready, the element fires
 * a bubbling "hl:diagram-ready" event (detail: {viewer, missing}); `missing` lists marker ids
 * that the diagram does not contain (an older process version, say). On failure the element shows
 * a Chinese message instead (role="alert") and fires "hl:diagram-error" (detail: {error}).
 *
 * The viewer fits the diagram; when that leaves it too small to read (scale below 0.8), it zooms
 * to 100 % centred on the overdue/active elements instead (data-bpmn-zoom="focus", else "fit")
 * and adds a button toggling between that and the whole diagram.
 *
 * The bpmn.io logo that bpmn-js draws must stay visible (bpmn-js licence): nothing here hides,
 * moves or covers it.
 */
(function (window, document) {
  "use strict";

  var MARKERS = {
    completed: "hl-completed",
    active: "hl-active",
    overdue: "hl-overdue",
    added: "hl-added",
    changed: "hl-changed",
    removed: "hl-removed",
  };
  var FIT_MARGIN = 24; // px around the diagram after fitting
  // Below this fitted scale labels are too small to read (bpmn-js draws 12 px text at scale 1):
  // zoom to FOCUS_SCALE centred on the active (or overdue) elements instead; smaller diagrams stay fitted.
  var READABLE_SCALE = 0.8;
  var FOCUS_SCALE = 1;

  // Labels are measured by the browser, so name CJK fonts that exist on Windows, macOS and Linux
  // desktops before bpmn-js's Arial (which has no Chinese glyphs).
  var FONT_FAMILY =
    '"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "Source Han Sans SC", ' +
    '"WenQuanYi Micro Hei", "WenQuanYi Zen Hei", Arial, sans-serif';

  function parseMarkers(el) {
    var raw = el.getAttribute("data-bpmn-markers");
    if (!raw) {
      return {};
    }
    var value = JSON.parse(raw); // a syntax error is reported like any other loading failure
    return value && typeof value === "object" ? value : {};
  }

  function showError(el, message) {
    el.textContent = "";
    var box = document.createElement("div");
    box.className = "hl-diagram-error";
    box.setAttribute("role", "alert");
    box.textContent = message;
    el.appendChild(box);
  }

  function describe(error) {
    if (error && error.status) {
      return "服务器返回 " + error.status;
    }
    if (error && error.name === "SyntaxError") {
      return "标记数据格式错误";
    }
    if (error && error.message) {
      return error.message;
    }
    return String(error);
  }

  function fetchXml(url) {
    return window
      .fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "application/xml, text/xml, */*" },
      })
      .then(function (response) {
        if (!response.ok) {
          var err = new Error("HTTP " + response.status);
          err.status = response.status;
          throw err;
        }
        return response.text();
      });
  }

  function badge(count) {
    var open = Number(count.open) || 0;
    var overdue = Number(count.overdue) || 0;
    if (!open && !overdue) {
      return null;
    }
    var box = document.createElement("div");
    box.className = "hl-badges";
    box.title = "在办 " + open + " 件" + (overdue ? "，其中逾期 " + overdue + " 件" : "");
    var openEl = document.createElement("span");
    openEl.className = "hl-badge hl-badge-open";
    openEl.textContent = String(open);
    box.appendChild(openEl);
    if (overdue) {
      var overdueEl = document.createElement("span");
      overdueEl.className = "hl-badge hl-badge-overdue";
      overdueEl.textContent = String(overdue);
      box.appendChild(overdueEl);
    }
    return box;
  }

  function applyMarkers(viewer, markers) {
    var canvas = viewer.get("canvas");
    var registry = viewer.get("elementRegistry");
    var overlays = viewer.get("overlays");
    var missing = [];
    Object.keys(MARKERS).forEach(function (key) {
      (markers[key] || []).forEach(function (id) {
        if (registry.get(id)) {
          canvas.addMarker(id, MARKERS[key]);
        } else if (missing.indexOf(id) < 0) {
          missing.push(id);
        }
      });
    });
    var counts = markers.counts || {};
    Object.keys(counts).forEach(function (id) {
      var element = registry.get(id);
      if (!element) {
        if (missing.indexOf(id) < 0) {
          missing.push(id);
        }
        return;
      }
      var html = badge(counts[id] || {});
      if (html) {
        overlays.add(id, "hl-count", { position: { top: -10, right: 10 }, html: html });
      }
    });
    return missing;
  }

  // Like canvas.zoom("fit-viewport", "auto") (centred, never above 100 %), but with a margin so
  // that outer flows, labels and count badges do not touch the container's border.
  function fit(canvas) {
    var box = canvas.viewbox();
    var inner = box.inner;
    var outer = box.outer;
    if (!inner.width || !inner.height || !outer.width || !outer.height) {
      return;
    }
    var scale = Math.min(
      1,
      Math.max(outer.width - 2 * FIT_MARGIN, 1) / inner.width,
      Math.max(outer.height - 2 * FIT_MARGIN, 1) / inner.height
    );
    var width = outer.width / scale;
    var height = outer.height / scale;
    canvas.viewbox({
      x: inner.x + inner.width / 2 - width / 2,
      y: inner.y + inner.height / 2 - height / 2,
      width: width,
      height: height,
    });
  }

  // After fit(): when the fitted scale is unreadable, zoom in on the elements in `ids` (the union
  // of their boxes, kept whole when possible, never below the fitted scale). Returns whether it did.
  function focus(canvas, registry, ids) {
    var box = canvas.viewbox();
    if (!(box.scale < READABLE_SCALE)) {
      return false;
    }
    var shapes = ids
      .map(function (id) {
        return registry.get(id);
      })
      .filter(function (shape) {
        return shape && !shape.waypoints && typeof shape.x === "number";
      });
    if (!shapes.length) {
      return false;
    }
    var minX = Infinity;
    var minY = Infinity;
    var maxX = -Infinity;
    var maxY = -Infinity;
    shapes.forEach(function (shape) {
      minX = Math.min(minX, shape.x);
      minY = Math.min(minY, shape.y);
      maxX = Math.max(maxX, shape.x + shape.width);
      maxY = Math.max(maxY, shape.y + shape.height);
    });
    var outer = box.outer;
    var scale = Math.max(
      box.scale,
      Math.min(
        FOCUS_SCALE,
        Math.max(outer.width - 2 * FIT_MARGIN, 1) / Math.max(maxX - minX, 1),
        Math.max(outer.height - 2 * FIT_MARGIN, 1) / Math.max(maxY - minY, 1)
      )
    );
    var width = outer.width / scale;
    var height = outer.height / scale;
    canvas.viewbox({
      x: (minX + maxX) / 2 - width / 2,
      y: (minY + maxY) / 2 - height / 2,
      width: width,
      height: height,
    });
    return true;
  }

  function collect(markers, keys) {
    var ids = [];
    keys.forEach(function (key) {
      (markers[key] || []).forEach(function (id) {
        if (ids.indexOf(id) < 0) {
          ids.push(id);
        }
      });
    });
    return ids;
  }

  // Where work is (overdue, active); on a version comparison, where the changes are.
  function focusIds(markers) {
    var ids = collect(markers, ["overdue", "active"]);
    return ids.length ? ids : collect(markers, ["added", "changed", "removed"]);
  }

  // A 全图 / 聚焦 toggle at the top left (the bpmn.io logo stays alone at the bottom right).
  function addToggle(el, canvas, registry, ids) {
    var button = document.createElement("button");
    button.type = "button";
    button.className = "hl-diagram-toggle";
    function label() {
      var focused = el.getAttribute("data-bpmn-zoom") === "focus";
      button.textContent = focused ? "查看全图" : el.getAttribute("data-bpmn-focus-label") || "聚焦办理环节";
      button.setAttribute("aria-pressed", focused ? "false" : "true");
    }
    button.addEventListener("click", function () {
      if (el.getAttribute("data-bpmn-zoom") === "focus") {
        fit(canvas);
        el.setAttribute("data-bpmn-zoom", "fit");
      } else {
        fit(canvas);
        el.setAttribute("data-bpmn-zoom", focus(canvas, registry, ids) ? "focus" : "fit");
      }
      label();
    });
    label();
    el.appendChild(button);
  }

  function render(el) {
    if (el.getAttribute("data-bpmn-state")) {
      return Promise.resolve(el.hlViewer || null); // already rendered (or rendering)
    }
    if (typeof window.BpmnJS !== "function") {
      el.setAttribute("data-bpmn-state", "error");
      showError(el, "流程图组件未加载（缺少 bpmn-js），请联系系统管理员。");
      return Promise.resolve(null);
    }
    el.setAttribute("data-bpmn-state", "loading");
    el.setAttribute("aria-busy", "true");
    if (!el.getAttribute("aria-label")) {
      el.setAttribute("aria-label", "流程图");
    }
    var viewer = null;
    var markers;
    return Promise.resolve()
      .then(function () {
        markers = parseMarkers(el);
        return fetchXml(el.getAttribute("data-bpmn-url"));
      })
      .then(function (xml) {
        viewer = new window.BpmnJS({
          container: el,
          textRenderer: {
            defaultStyle: { fontFamily: FONT_FAMILY },
            externalStyle: { fontFamily: FONT_FAMILY },
          },
        });
        return viewer.importXML(xml);
      })
      .then(function () {
        var canvas = viewer.get("canvas");
        var registry = viewer.get("elementRegistry");
        fit(canvas);
        var missing = applyMarkers(viewer, markers);
        var ids = focusIds(markers);
        el.setAttribute("data-bpmn-zoom", focus(canvas, registry, ids) ? "focus" : "fit");
        if (el.getAttribute("data-bpmn-zoom") === "focus") {
          addToggle(el, canvas, registry, ids);
        }
        el.hlViewer = viewer;
        el.removeAttribute("aria-busy");
        el.setAttribute("data-bpmn-state", "ready");
        el.dispatchEvent(
          new CustomEvent("hl:diagram-ready", { bubbles: true, detail: { viewer: viewer, missing: missing } })
        );
        return viewer;
      })
      .catch(function (error) {
        if (viewer) {
          viewer.destroy();
        }
        el.removeAttribute("aria-busy");
        el.setAttribute("data-bpmn-state", "error");
        showError(el, "流程图加载失败（" + describe(error) + "），请刷新页面重试。");
        el.dispatchEvent(new CustomEvent("hl:diagram-error", { bubbles: true, detail: { error: error } }));
        return null;
      });
  }

  function initAll(root) {
    var scope = root && root.querySelectorAll ? root : document;
    var found = Array.prototype.slice.call(scope.querySelectorAll("[data-bpmn-url]"));
    if (scope.matches && scope.matches("[data-bpmn-url]")) {
      found.unshift(scope);
    }
    return Promise.all(found.map(render));
  }

  window.HazardDiagram = { render: render, initAll: initAll, markers: MARKERS };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      initAll(document);
    });
  } else {
    initAll(document);
  }
  // htmx fires htmx:load on each element it swaps in.
  document.addEventListener("htmx:load", function (event) {
    initAll(event.target);
  });
})(window, document);
