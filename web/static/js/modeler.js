/*
 * modeler.js: the in-browser BPMN modeler of /design/diagrams/<key>/edit, no bundler.
 *
 * Needs the bpmn-js Modeler global `BpmnJS` (vendor/bpmn-js/bpmn-modeler.production.min.js) and its
 * CSS, plus css/modeler.css; web/assets.py lists them in order ("modeler" bundle). Markup (rendered
 * by web/templates/design_diagrams/edit.html; every URL comes from a data attribute):
 *
 *   <div id="hl-modeler" data-key="hazard_general_hazchem" data-moddle-url="…/spiffworkflow-moddle.json"
 *        data-source-url data-save-url data-discard-url data-check-url data-publish-url data-export-name
 *        data-vocabulary-url data-versions-url data-overview-url data-draft-revision data-draft-saved-at
 *        data-draft-saved-by data-published-version>
 *     [data-modeler-canvas] [data-modeler-panel] [data-modeler-problems] [data-modeler-status] …
 *
 * Our extensions live in <spiffworkflow:properties> (moddle descriptor js/spiffworkflow-moddle.json).
 * The side panel edits them for the selected element through the modeler's command stack
 * (`modeling.updateProperties` / `updateModdleProperties`, grouped per change by the command
 * "hl.properties.update"), so undo/redo covers them. Choices come from /design/vocabulary.json.
 *
 * Toolbar: 保存草稿 (also Ctrl+S; 409 = someone else saved: never overwritten, the page says to
 * reload), 检查 (the publish gate: problems as badges and markers on the elements and as a list
 * under the canvas), 发布 (note, then the version or the problems), 导入/导出 .bpmn, 放弃草稿.
 * State is on #hl-modeler: data-state "loading" → "ready" (or "error"), data-dirty "true"/"false".
 *
 * The bpmn.io logo that bpmn-js draws must stay visible (bpmn-js licence): nothing here hides,
 * moves or covers it.
 */
(function (window, document) {
  "use strict";

  var root = document.getElementById("hl-modeler");
  if (!root) {
    return;
  }

  // Labels are measured by the browser: name CJK fonts before bpmn-js's Arial (as js/diagram.js).
  var FONT_FAMILY =
    '"Microsoft YaHei", "PingFang SC", "Noto Sans CJK SC", "Source Han Sans SC", ' +
    '"WenQuanYi Micro Hei", "WenQuanYi Zen Hei", Arial, sans-serif';
  var SPIFF_PROPERTIES = "spiffworkflow:Properties";
  var SPIFF_PROPERTY = "spiffworkflow:Property";
  var UPDATE_COMMAND = "hl.properties.update";
  var FIT_MARGIN = 24;
  // below MIN_FIT_SCALE a fitted diagram is unreadable: show it at READABLE_SCALE instead
  var MIN_FIT_SCALE = 0.6;
  var READABLE_SCALE = 0.8;

  var TYPE_LABELS = {
    "bpmn:Process": "流程",
    "bpmn:Collaboration": "协作",
    "bpmn:Participant": "泳池",
    "bpmn:Lane": "泳道",
    "bpmn:UserTask": "用户任务",
    "bpmn:ServiceTask": "服务任务",
    "bpmn:ScriptTask": "脚本任务（不允许）",
    "bpmn:BusinessRuleTask": "业务规则任务",
    "bpmn:ManualTask": "手工任务",
    "bpmn:SendTask": "发送任务",
    "bpmn:ReceiveTask": "接收任务",
    "bpmn:Task": "任务",
    "bpmn:CallActivity": "调用活动",
    "bpmn:SubProcess": "子流程",
    "bpmn:StartEvent": "开始事件",
    "bpmn:EndEvent": "结束事件",
    "bpmn:BoundaryEvent": "边界事件",
    "bpmn:IntermediateCatchEvent": "中间捕获事件",
    "bpmn:IntermediateThrowEvent": "中间抛出事件",
    "bpmn:ExclusiveGateway": "排他网关",
    "bpmn:ParallelGateway": "并行网关",
    "bpmn:InclusiveGateway": "包容网关",
    "bpmn:EventBasedGateway": "事件网关",
    "bpmn:SequenceFlow": "顺序流",
    "bpmn:TextAnnotation": "文本注释",
    "bpmn:Association": "关联",
    "bpmn:DataObjectReference": "数据对象",
    "bpmn:DataStoreReference": "数据存储",
    "bpmn:Group": "分组",
  };
  // user-task properties the panel edits with a control of its own (others are listed read-only)
  var TASK_FIELDS = [
    "candidate_role",
    "org_scope",
    "form_key",
    "status",
    "due_variable",
    "delegable",
    "separate_from",
    "statutory",
    "verification",
  ];

  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  var els = {
    canvas: root.querySelector("[data-modeler-canvas]"),
    panel: root.querySelector("[data-modeler-panel]"),
    problems: root.querySelector("[data-modeler-problems]"),
    status: root.querySelector("[data-modeler-status]"),
    message: root.querySelector("[data-modeler-message]"),
    diagrams: root.querySelector("[data-modeler-diagrams]"),
    file: root.querySelector("[data-modeler-file]"),
    publishDialog: root.querySelector("[data-modeler-publish-dialog]"),
  };

  var state = {
    modeler: null,
    vocab: null,
    revision: intOrNull(root.getAttribute("data-draft-revision")),
    savedAt: root.getAttribute("data-draft-saved-at") || "",
    savedBy: root.getAttribute("data-draft-saved-by") || "",
    publishedVersion: intOrNull(root.getAttribute("data-published-version")),
    dirty: false,
    busy: false,
    conflict: false,
    problems: [], // [{element, message, severity}] of the last check or publish
    problemsStale: false, // changed since
    panelUpdating: false,
  };

  function data(name) {
    return root.getAttribute("data-" + name) || "";
  }

  function intOrNull(text) {
    var n = parseInt(text, 10);
    return isNaN(n) ? null : n;
  }

  // --- small DOM helpers --------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) {
        return;
      }
      if (key === "text") {
        node.textContent = value;
      } else if (key === "className") {
        node.className = value;
      } else if (key === "value") {
        node.value = value;
      } else if (key === "checked" || key === "selected" || key === "disabled" || key === "readOnly") {
        node[key] = true;
      } else {
        node.setAttribute(key, value === true ? "" : String(value));
      }
    });
    (children || []).forEach(function (child) {
      if (child !== null && child !== undefined) {
        node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
      }
    });
    return node;
  }

  function say(text, kind, link) {
    var box = els.message;
    box.textContent = "";
    box.className = "hl-modeler-message" + (text ? " hl-modeler-message-" + (kind || "info") : "");
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    if (!text) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    box.appendChild(document.createTextNode(text));
    if (link) {
      box.appendChild(document.createTextNode(" "));
      box.appendChild(el("a", { href: link.href, text: link.text }));
    }
  }

  function messageOf(body, fallback) {
    if (body && typeof body.message === "string" && body.message) {
      var parts = [body.message];
      if (body.errors && !Array.isArray(body.errors)) {
        Object.keys(body.errors).forEach(function (key) {
          [].concat(body.errors[key]).forEach(function (m) {
            if (String(m) !== body.message) {
              parts.push(String(m));
            }
          });
        });
      }
      return parts.join("：");
    }
    return fallback;
  }

  // --- HTTP ---------------------------------------------------------------------------------------

  function postJson(url, payload) {
    return window
      .fetch(url, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          Accept: "application/json",
          "Content-Type": "application/json",
          "X-CSRF-Token": csrf,
        },
        body: JSON.stringify(payload),
      })
      .then(function (response) {
        return response
          .json()
          .catch(function () {
            return {};
          })
          .then(function (body) {
            return { status: response.status, ok: response.ok, body: body };
          });
      });
  }

  function getText(url, accept) {
    return window
      .fetch(url, { credentials: "same-origin", headers: { Accept: accept } })
      .then(function (response) {
        if (!response.ok) {
          var err = new Error("服务器返回 " + response.status);
          err.status = response.status;
          throw err;
        }
        return response.text().then(function (text) {
          return { text: text, headers: response.headers };
        });
      });
  }

  function networkError() {
    say("无法连接服务器，请检查网络后重试（修改仍在本页，未丢失）。", "error");
  }

  // --- status line --------------------------------------------------------------------------------

  function renderStatus() {
    var parts = [];
    if (state.revision !== null) {
      var saved = "草稿第 " + state.revision + " 版";
      if (state.savedAt) {
        saved += "，保存于 " + state.savedAt + (state.savedBy ? "（" + state.savedBy + "）" : "");
      }
      parts.push(saved);
    } else if (state.publishedVersion !== null) {
      parts.push("已发布第 " + state.publishedVersion + " 版，尚无草稿");
    } else {
      parts.push("新流程，尚未保存草稿");
    }
    if (state.publishedVersion !== null && state.revision !== null) {
      parts.push("基于已发布第 " + state.publishedVersion + " 版");
    }
    els.status.textContent = parts.join(" · ");
    if (state.dirty) {
      els.status.appendChild(el("span", { className: "hl-modeler-dirty", text: " · 有未保存的修改" }));
    }
    root.setAttribute("data-dirty", state.dirty ? "true" : "false");
    var discard = root.querySelector('[data-action="discard"]');
    if (discard) {
      discard.disabled = state.revision === null;
    }
  }

  function setDirty(dirty) {
    state.dirty = dirty;
    renderStatus();
  }

  function setBusy(busy) {
    state.busy = busy;
    Array.prototype.forEach.call(root.querySelectorAll("[data-action]"), function (button) {
      if (busy) {
        button.setAttribute("aria-disabled", "true");
      } else {
        button.removeAttribute("aria-disabled");
      }
    });
    root.setAttribute("aria-busy", busy ? "true" : "false");
  }

  // --- moddle helpers -----------------------------------------------------------------------------

  function is(bo, type) {
    return !!(bo && typeof bo.$instanceOf === "function" && bo.$instanceOf(type));
  }

  function spiffContainer(bo) {
    var ext = bo && bo.get ? bo.get("extensionElements") : null;
    if (!ext) {
      return null;
    }
    var values = ext.get("values") || [];
    for (var i = 0; i < values.length; i++) {
      if (is(values[i], SPIFF_PROPERTIES)) {
        return values[i];
      }
    }
    return null;
  }

  // [{name, value}] in document order
  function spiffList(bo) {
    var container = spiffContainer(bo);
    return container
      ? (container.get("properties") || []).map(function (p) {
          return { name: p.get("name"), value: p.get("value") };
        })
      : [];
  }

  function spiffProps(bo) {
    var props = {};
    spiffList(bo).forEach(function (p) {
      props[p.name] = p.value;
    });
    return props;
  }

  function extensionOf(bo, type) {
    var ext = bo && bo.get ? bo.get("extensionElements") : null;
    var values = ext ? ext.get("values") || [] : [];
    for (var i = 0; i < values.length; i++) {
      if (values[i].$type === type) {
        return values[i];
      }
    }
    return null;
  }

  function processOf(bo) {
    var node = bo;
    while (node && !is(node, "bpmn:Process")) {
      if (is(node, "bpmn:Participant")) {
        return node.get("processRef") || null;
      }
      node = node.$parent;
    }
    return node || null;
  }

  function userTasksOf(container, out) {
    (container.get("flowElements") || []).forEach(function (node) {
      if (is(node, "bpmn:UserTask")) {
        out.push(node);
      }
      if (is(node, "bpmn:SubProcess")) {
        userTasksOf(node, out);
      }
    });
    return out;
  }

  // One command per panel change: the nested updates are undone and redone together.
  function UpdatePropertiesHandler(modeling, moddle) {
    this._modeling = modeling;
    this._moddle = moddle;
  }
  UpdatePropertiesHandler.$inject = ["modeling", "moddle"];
  UpdatePropertiesHandler.prototype.preExecute = function (context) {
    var modeling = this._modeling;
    var moddle = this._moddle;
    var element = context.element;
    var bo = element.businessObject;
    var changes = context.changes;
    var ext = bo.get("extensionElements");
    if (!ext) {
      ext = moddle.create("bpmn:ExtensionElements", { values: [] });
      ext.$parent = bo;
      modeling.updateProperties(element, { extensionElements: ext });
    }
    var container = spiffContainer(bo);
    if (!container) {
      container = moddle.create(SPIFF_PROPERTIES, { properties: [] });
      container.$parent = ext;
      modeling.updateModdleProperties(element, ext, { values: (ext.get("values") || []).concat([container]) });
    }
    var list = (container.get("properties") || []).slice();
    var listChanged = false;
    Object.keys(changes).forEach(function (name) {
      var value = changes[name];
      var existing = null;
      for (var i = 0; i < list.length; i++) {
        if (list[i].get("name") === name) {
          existing = list[i];
          break;
        }
      }
      if (value === null || value === undefined || value === "") {
        if (existing) {
          list.splice(list.indexOf(existing), 1);
          listChanged = true;
        }
      } else if (existing) {
        if (existing.get("value") !== value) {
          modeling.updateModdleProperties(element, existing, { value: value });
        }
      } else {
        var property = moddle.create(SPIFF_PROPERTY, { name: name, value: value });
        property.$parent = container;
        list.push(property);
        listChanged = true;
      }
    });
    if (listChanged) {
      modeling.updateModdleProperties(element, container, { properties: list });
    }
  };

  // --- the modeler --------------------------------------------------------------------------------

  function service(name) {
    return state.modeler.get(name);
  }

  function createModeler(descriptor) {
    var modeler = new window.BpmnJS({
      container: els.canvas,
      moddleExtensions: { spiffworkflow: descriptor },
      textRenderer: {
        defaultStyle: { fontFamily: FONT_FAMILY },
        externalStyle: { fontFamily: FONT_FAMILY },
      },
    });
    modeler.get("commandStack").registerHandler(UPDATE_COMMAND, UpdatePropertiesHandler);
    var eventBus = modeler.get("eventBus");
    eventBus.on("commandStack.changed", function (event) {
      if (event.trigger !== "clear") {
        setDirty(true);
        if (state.problems.length && !state.problemsStale) {
          state.problemsStale = true;
          renderProblemList();
        }
      }
      if (!state.panelUpdating) {
        renderPanel();
      }
    });
    eventBus.on("selection.changed", function () {
      renderPanel();
    });
    eventBus.on("import.done", function () {
      renderDiagramSwitch();
      applyProblems();
      renderPanel();
    });
    return modeler;
  }

  // px on the left covered by the palette (the tool bar bpmn-js draws over the canvas)
  function paletteWidth() {
    var palette = els.canvas.querySelector(".djs-palette");
    if (!palette) {
      return 0;
    }
    return Math.max(0, palette.getBoundingClientRect().right - els.canvas.getBoundingClientRect().left);
  }

  // Fit the diagram beside the palette, never above 100 %; a diagram too large to read that way
  // starts at READABLE_SCALE from its top left corner instead (the user scrolls or zooms out).
  function fit() {
    var canvas = service("canvas");
    var box = canvas.viewbox();
    var inner = box.inner;
    var outer = box.outer;
    if (!inner.width || !inner.height || !outer.width || !outer.height) {
      return;
    }
    var left = paletteWidth() + FIT_MARGIN;
    var usable = Math.max(outer.width - left - FIT_MARGIN, 1);
    var scale = Math.min(1, usable / inner.width, Math.max(outer.height - 2 * FIT_MARGIN, 1) / inner.height);
    if (scale < MIN_FIT_SCALE) {
      scale = READABLE_SCALE;
      canvas.viewbox({
        x: inner.x - left / scale,
        y: inner.y - FIT_MARGIN / scale,
        width: outer.width / scale,
        height: outer.height / scale,
      });
      return;
    }
    var width = outer.width / scale;
    var height = outer.height / scale;
    canvas.viewbox({
      x: inner.x + inner.width / 2 - (left + usable / 2) / scale,
      y: inner.y + inner.height / 2 - height / 2,
      width: width,
      height: height,
    });
  }

  function importXml(xml) {
    return state.modeler.importXML(xml).then(function (result) {
      fit();
      return result;
    });
  }

  function currentXml() {
    return state.modeler.saveXML({ format: true }).then(function (result) {
      return result.xml;
    });
  }

  // --- several diagrams in one file (a sector variant and the shared verification process) ------

  function definitions() {
    return state.modeler.getDefinitions();
  }

  function diagramLabel(diagram) {
    var plane = diagram.plane;
    var bo = plane && plane.bpmnElement;
    var name = bo && (bo.name || bo.id);
    return name || diagram.name || diagram.id;
  }

  function renderDiagramSwitch() {
    var box = els.diagrams;
    if (!box) {
      return;
    }
    var defs = definitions();
    var diagrams = (defs && defs.diagrams) || [];
    box.textContent = "";
    box.hidden = diagrams.length < 2;
    if (diagrams.length < 2) {
      return;
    }
    var current = service("canvas").getRootElement().businessObject;
    var select = el("select", { id: "hl-diagram-switch", "aria-label": "切换流程图" });
    diagrams.forEach(function (diagram) {
      var bo = diagram.plane && diagram.plane.bpmnElement;
      select.appendChild(
        el("option", { value: diagram.id, text: diagramLabel(diagram), selected: bo === current })
      );
    });
    select.addEventListener("change", function () {
      openDiagram(select.value);
    });
    box.appendChild(el("label", { for: "hl-diagram-switch", text: "本文件中的流程图：" }));
    box.appendChild(select);
  }

  function openDiagram(diagramId) {
    var diagram = (definitions().diagrams || []).filter(function (d) {
      return d.id === diagramId;
    })[0];
    if (!diagram) {
      return Promise.resolve();
    }
    // Opening another diagram clears the undo history (bpmn-js); the model and its changes stay.
    var dirty = state.dirty;
    return state.modeler.open(diagram).then(function () {
      fit();
      setDirty(dirty);
    });
  }

  // the diagram (id) that shows the element with `id`
  function diagramShowing(id) {
    var diagrams = definitions().diagrams || [];
    for (var i = 0; i < diagrams.length; i++) {
      var elements = (diagrams[i].plane && diagrams[i].plane.planeElement) || [];
      for (var j = 0; j < elements.length; j++) {
        if (elements[j].bpmnElement && elements[j].bpmnElement.id === id) {
          return diagrams[i].id;
        }
      }
      if (diagrams[i].plane && diagrams[i].plane.bpmnElement && diagrams[i].plane.bpmnElement.id === id) {
        return diagrams[i].id;
      }
    }
    return null;
  }

  // --- problems on the diagram -------------------------------------------------------------------

  function clearProblemDecorations() {
    if (!state.modeler) {
      return;
    }
    var overlays = service("overlays");
    var canvas = service("canvas");
    var registry = service("elementRegistry");
    overlays.remove({ type: "hl-problem" });
    registry.forEach(function (element) {
      canvas.removeMarker(element, "hl-problem-error");
      canvas.removeMarker(element, "hl-problem-warning");
    });
  }

  function applyProblems() {
    clearProblemDecorations();
    var registry = service("elementRegistry");
    var canvas = service("canvas");
    var overlays = service("overlays");
    var rootElement = canvas.getRootElement();
    var byElement = {};
    state.problems.forEach(function (problem) {
      if (problem.element) {
        (byElement[problem.element] = byElement[problem.element] || []).push(problem);
      }
    });
    Object.keys(byElement).forEach(function (id) {
      var element = registry.get(id);
      if (!element || element === rootElement || element.type === "label") {
        return;
      }
      var list = byElement[id];
      var severity = list.some(function (p) {
        return p.severity === "error";
      })
        ? "error"
        : "warning";
      canvas.addMarker(element, "hl-problem-" + severity);
      var badge = el(
        "div",
        {
          className: "hl-problem-badge hl-problem-badge-" + severity,
          "data-problem-element": id,
          title: list
            .map(function (p) {
              return p.message;
            })
            .join("\n"),
        },
        [
          el("span", { className: "hl-problem-icon", text: severity === "error" ? "!" : "?" }),
          el("span", {
            className: "hl-problem-text",
            text: list[0].message + (list.length > 1 ? "（另有 " + (list.length - 1) + " 项）" : ""),
          }),
        ]
      );
      badge.addEventListener("click", function () {
        focusElement(id);
      });
      var position = element.waypoints ? { top: -14, left: -14 } : { top: -14, right: 14 };
      if (element.waypoints) {
        // a flow: put the badge at its middle waypoint (overlays are relative to the bbox)
        var mid = element.waypoints[Math.floor(element.waypoints.length / 2)];
        var minX = Math.min.apply(null, element.waypoints.map(function (p) { return p.x; }));
        var minY = Math.min.apply(null, element.waypoints.map(function (p) { return p.y; }));
        position = { top: mid.y - minY - 12, left: mid.x - minX - 12 };
      }
      overlays.add(element, "hl-problem", { position: position, html: badge });
    });
    renderProblemList();
  }

  function elementName(id) {
    if (!id) {
      return "整个文件";
    }
    var registry = state.modeler ? service("elementRegistry") : null;
    var element = registry && registry.get(id);
    var bo = element && element.businessObject;
    if (!bo) {
      bo = findBusinessObject(id);
    }
    if (bo && is(bo, "bpmn:Process")) {
      return "整个流程（" + id + "）";
    }
    if (bo && bo.name) {
      return bo.name + "（" + id + "）";
    }
    return id;
  }

  function findBusinessObject(id) {
    var defs = state.modeler && definitions();
    var found = null;
    function walk(nodes) {
      (nodes || []).forEach(function (node) {
        if (found || !node) {
          return;
        }
        if (node.id === id) {
          found = node;
        } else if (is(node, "bpmn:FlowElementsContainer")) {
          walk(node.get("flowElements"));
        }
      });
    }
    walk(defs ? defs.get("rootElements") : []);
    return found;
  }

  function renderProblemList() {
    var box = els.problems;
    box.textContent = "";
    if (!state.problems.length) {
      box.hidden = true;
      return;
    }
    box.hidden = false;
    var errors = state.problems.filter(function (p) {
      return p.severity === "error";
    }).length;
    var warnings = state.problems.length - errors;
    var heading = [];
    if (errors) {
      heading.push(errors + " 个错误（须改正后才能发布）");
    }
    if (warnings) {
      heading.push(warnings + " 个提示");
    }
    box.appendChild(el("h2", { text: "检查结果：" + heading.join("，") }));
    if (state.problemsStale) {
      box.appendChild(el("p", { className: "hl-problems-stale small", text: "流程图在检查后又有修改，请重新检查。" }));
    }
    var list = el("ul", { className: "hl-problem-list" });
    state.problems.forEach(function (problem) {
      var item = el("li", { className: "hl-problem hl-problem-" + problem.severity }, [
        el("span", {
          className: "tag " + (problem.severity === "error" ? "tag-danger" : "tag-warning"),
          text: problem.severity === "error" ? "错误" : "提示",
        }),
        " ",
      ]);
      if (problem.element) {
        var button = el("button", {
          type: "button",
          className: "hl-problem-link",
          "data-problem-element": problem.element,
          text: elementName(problem.element),
        });
        button.addEventListener("click", function () {
          focusElement(problem.element);
        });
        item.appendChild(button);
        item.appendChild(document.createTextNode("："));
      }
      item.appendChild(el("span", { className: "hl-problem-message", text: problem.message }));
      list.appendChild(item);
    });
    box.appendChild(list);
  }

  function setProblems(errors, warnings) {
    state.problemsStale = false;
    state.problems = (errors || [])
      .map(function (p) {
        return { element: p.element || null, message: p.message, severity: "error" };
      })
      .concat(
        (warnings || []).map(function (p) {
          return { element: p.element || null, message: p.message, severity: "warning" };
        })
      );
    applyProblems();
    renderPanel();
  }

  function focusElement(id) {
    var registry = service("elementRegistry");
    var element = registry.get(id);
    var ready = Promise.resolve();
    if (!element) {
      var diagramId = diagramShowing(id);
      if (diagramId) {
        ready = openDiagram(diagramId).then(function () {
          renderDiagramSwitch();
        });
      }
    }
    return ready.then(function () {
      var target = registry.get(id);
      var canvas = service("canvas");
      if (!target || target === canvas.getRootElement()) {
        service("selection").select(null);
        renderPanel();
        return;
      }
      service("selection").select(target);
      canvas.scrollToElement(target, { top: 120, bottom: 120, left: 160, right: 160 });
    });
  }

  function focusFirstError() {
    var first = state.problems.filter(function (p) {
      return p.severity === "error" && p.element;
    })[0];
    if (first) {
      focusElement(first.element);
    }
  }

  // --- the properties panel ------------------------------------------------------------------------

  function selected() {
    var selection = service("selection").get();
    if (selection.length === 1) {
      var element = selection[0];
      return element.type === "label" && element.labelTarget ? element.labelTarget : element;
    }
    if (selection.length > 1) {
      return null;
    }
    return service("canvas").getRootElement();
  }

  function runUpdate(element, changes) {
    state.panelUpdating = true;
    try {
      service("commandStack").execute(UPDATE_COMMAND, { element: element, changes: changes });
    } finally {
      state.panelUpdating = false;
    }
  }

  function modelingCall(fn) {
    state.panelUpdating = true;
    try {
      fn(service("modeling"));
    } finally {
      state.panelUpdating = false;
    }
  }

  var fieldCounter = 0;

  function field(labelText, control, help, problem) {
    var id = control.id || "hl-field-" + ++fieldCounter;
    control.id = id;
    var children = [el("label", { for: id, className: "hl-panel-label", text: labelText }), control];
    if (problem) {
      children.push(el("p", { className: "hl-panel-problem", text: problem }));
    }
    if (help) {
      children.push(el("p", { className: "hl-panel-help", text: help }));
    }
    return el("div", { className: "hl-panel-field" }, children);
  }

  function options(list, value, emptyLabel, describe) {
    var select = el("select", {});
    var known = false;
    if (emptyLabel !== null) {
      select.appendChild(el("option", { value: "", text: emptyLabel, selected: !value }));
    }
    (list || []).forEach(function (item) {
      var selectedNow = item.value === value;
      known = known || selectedNow;
      select.appendChild(
        el("option", {
          value: item.value,
          text: describe ? describe(item) : item.label,
          selected: selectedNow,
        })
      );
    });
    if (value && !known) {
      select.appendChild(el("option", { value: value, text: value + "（不在可选范围内）", selected: true }));
    }
    return select;
  }

  function selectField(element, name, labelText, list, props, opts) {
    opts = opts || {};
    var value = props[name] || "";
    var select = options(list, value, opts.empty === undefined ? "— 请选择 —" : opts.empty, opts.describe);
    select.name = name;
    select.setAttribute("data-property", name);
    var problem = null;
    if (opts.required && !value) {
      problem = "必填";
    } else if (value && !(list || []).some(function (item) { return item.value === value; })) {
      problem = "「" + value + "」不在可选范围内，请重新选择";
    }
    if (problem) {
      select.setAttribute("aria-invalid", "true");
    }
    select.addEventListener("change", function () {
      var change = {};
      change[name] = select.value || null;
      runUpdate(element, change);
      renderPanel();
    });
    return field(labelText, select, opts.help, problem);
  }

  function labelOf(list, value) {
    var hit = (list || []).filter(function (item) {
      return item.value === value;
    })[0];
    return hit ? hit.label : value;
  }

  function nameField(element, bo) {
    var input = el("input", { type: "text", value: bo.get("name") || "", autocomplete: "off" });
    input.name = "name";
    input.setAttribute("data-property", "name");
    function commit() {
      var value = input.value.trim();
      if (value === (bo.get("name") || "")) {
        return;
      }
      modelingCall(function (modeling) {
        if (element === service("canvas").getRootElement() || !element.parent) {
          modeling.updateProperties(element, { name: value || undefined });
        } else {
          modeling.updateLabel(element, value);
        }
      });
      // not re-rendered: the focus may be on its way to another control of the panel
      var heading = els.panel.querySelector(".hl-panel-head h2");
      if (heading) {
        heading.textContent = value || "（未命名）";
      }
    }
    input.addEventListener("change", commit);
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        commit();
      }
    });
    return field("名称", input);
  }

  function idField(bo) {
    var input = el("input", { type: "text", value: bo.id, readOnly: true, className: "mono" });
    return field("标识 (id)", input, "标识不可修改：流程运行、版本比较和迁移都依靠它。");
  }

  function readOnlyList(title, rows) {
    if (!rows.length) {
      return null;
    }
    var dl = el("dl", { className: "hl-panel-readonly" });
    rows.forEach(function (row) {
      dl.appendChild(el("dt", { text: row[0] }));
      var value = row[1] === undefined || row[1] === null ? "" : String(row[1]);
      dl.appendChild(el("dd", { className: "mono", text: value }));
    });
    return el("section", { className: "hl-panel-section" }, [el("h3", { text: title }), dl]);
  }

  function otherProperties(bo, handled) {
    return readOnlyList(
      "其他属性（只读）",
      spiffList(bo)
        .filter(function (p) {
          return handled.indexOf(p.name) < 0;
        })
        .map(function (p) {
          return [p.name, p.value];
        })
    );
  }

  function problemsFor(id) {
    var list = state.problems.filter(function (p) {
      return p.element === id;
    });
    if (!list.length) {
      return null;
    }
    return el(
      "ul",
      { className: "hl-panel-problems" },
      list.map(function (p) {
        return el("li", { className: "hl-problem-" + p.severity, text: p.message });
      })
    );
  }

  function separateFromField(element, bo, props) {
    var process = processOf(bo);
    var tasks = process ? userTasksOf(process, []).filter(function (t) { return t !== bo; }) : [];
    var current = (props.separate_from || "")
      .split(",")
      .map(function (s) {
        return s.trim();
      })
      .filter(Boolean);
    var box = el("fieldset", { className: "hl-panel-checks", "data-property": "separate_from" }, [
      el("legend", { className: "hl-panel-label", text: "职责分离：不得由以下环节的办理人办理" }),
    ]);
    var ids = tasks.map(function (t) {
      return t.id;
    });
    current.forEach(function (id) {
      if (ids.indexOf(id) < 0) {
        ids.push(id);
      }
    });
    if (!ids.length) {
      box.appendChild(el("p", { className: "hl-panel-help", text: "本流程没有其他用户任务。" }));
    }
    ids.forEach(function (id) {
      var task = tasks.filter(function (t) { return t.id === id; })[0];
      var checkbox = el("input", { type: "checkbox", value: id, checked: current.indexOf(id) >= 0 });
      checkbox.addEventListener("change", function () {
        var chosen = Array.prototype.filter
          .call(box.querySelectorAll("input[type=checkbox]"), function (c) {
            return c.checked;
          })
          .map(function (c) {
            return c.value;
          });
        runUpdate(element, { separate_from: chosen.join(",") || null });
        renderPanel();
      });
      var text = task ? (task.name || id) + "（" + id + "）" : id + "（图中没有该环节）";
      box.appendChild(el("label", { className: "hl-panel-check" }, [checkbox, " ", text]));
    });
    return box;
  }

  function userTaskFields(element, bo, body) {
    var vocab = state.vocab;
    var props = spiffProps(bo);
    body.appendChild(
      selectField(element, "candidate_role", "候选角色", vocab.roles, props, {
        required: true,
        help: "由哪类人员办理此环节。",
      })
    );
    body.appendChild(
      selectField(element, "org_scope", "组织范围", vocab.org_scopes, props, {
        required: true,
        help: "企业：隐患所在企业；部门：负有监管职责的部门；属地：隐患所在地的乡镇/网格。",
      })
    );
    body.appendChild(
      selectField(element, "form_key", "表单", vocab.forms, props, {
        required: true,
        describe: function (item) {
          return item.label + "（" + item.value + (item.version ? "，第 " + item.version + " 版" : "") + "）";
        },
      })
    );
    body.appendChild(
      selectField(element, "status", "隐患状态", vocab.statuses, props, {
        required: true,
        help: "此环节办理期间隐患台账显示的状态。",
      })
    );
    body.appendChild(
      selectField(element, "due_variable", "期限规则", vocab.due_variables, props, {
        empty: "无期限",
        describe: function (item) {
          return item.label + "（" + item.value + "）";
        },
        help: "办理期限取自哪个期限变量（由“计算期限”服务任务或登记时的整改期限设定）。",
      })
    );
    body.appendChild(
      selectField(
        element,
        "delegable",
        "是否可转办",
        [
          { value: "true", label: "可以转办" },
          { value: "false", label: "不得转办（须本人办理）" },
        ],
        props,
        { empty: "可以转办（默认）" }
      )
    );
    body.appendChild(
      selectField(element, "statutory", "法定环节", vocab.statutory, props, {
        empty: "不是法定环节",
        describe: function (item) {
          return item.label;
        },
        help: "标记后发布检查会核对办理角色和组织范围是否符合法定要求。",
      })
    );
    var verification = el("input", { type: "checkbox", checked: props.verification === "true" });
    verification.setAttribute("data-property", "verification");
    verification.addEventListener("change", function () {
      runUpdate(element, { verification: verification.checked ? "true" : null });
      renderPanel();
    });
    body.appendChild(
      el("div", { className: "hl-panel-field" }, [
        el("label", { className: "hl-panel-check" }, [verification, " 整改验收环节（verification）"]),
      ])
    );
    body.appendChild(separateFromField(element, bo, props));
    var other = otherProperties(bo, TASK_FIELDS);
    if (other) {
      body.appendChild(other);
    }
  }

  function processFields(element, bo, body) {
    var props = spiffProps(bo);
    body.appendChild(
      selectField(element, "policy_profile", "督办升级策略", state.vocab.policy_profiles, props, {
        empty: "按行业/属地自动选择",
        describe: function (item) {
          return item.label + "（" + item.value + "）";
        },
        help: "留空时按隐患所属行业和属地适用的策略。",
      })
    );
    var other = otherProperties(bo, ["policy_profile"]);
    if (other) {
      body.appendChild(other);
    }
  }

  function conditionFields(element, bo, body) {
    var expression = bo.get("conditionExpression");
    var text = expression ? expression.get("body") || "" : "";
    var source = bo.get("sourceRef");
    var isDefault = !!(source && source.get && source.get("default") === bo);
    var area = el("textarea", { rows: 3, className: "mono", spellcheck: "false" });
    area.value = text;
    area.setAttribute("data-property", "conditionExpression");
    area.disabled = isDefault;
    area.addEventListener("change", function () {
      var value = area.value.trim();
      var current = bo.get("conditionExpression");
      modelingCall(function (modeling) {
        if (!value) {
          if (current) {
            modeling.updateProperties(element, { conditionExpression: undefined });
          }
        } else if (current) {
          if (current.get("body") !== value) {
            modeling.updateModdleProperties(element, current, { body: value });
          }
        } else {
          var expr = service("moddle").create("bpmn:FormalExpression", { body: value });
          modeling.updateProperties(element, { conditionExpression: expr });
        }
      });
      renderPanel();
    });
    body.appendChild(
      field(
        "条件表达式",
        area,
        isDefault
          ? "这是网关的默认流：其他条件都不成立时走此分支，不能带条件。"
          : "例如 decision == \"pass\"。只能使用安全表达式（检查和发布时校验）；留空表示无条件。"
      )
    );
    if (source && (is(source, "bpmn:ExclusiveGateway") || is(source, "bpmn:InclusiveGateway"))) {
      var checkbox = el("input", { type: "checkbox", checked: isDefault });
      checkbox.setAttribute("data-property", "default");
      checkbox.addEventListener("change", function () {
        var sourceShape = service("elementRegistry").get(source.id);
        if (!sourceShape) {
          return;
        }
        modelingCall(function (modeling) {
          if (checkbox.checked && bo.get("conditionExpression")) {
            modeling.updateProperties(element, { conditionExpression: undefined });
          }
          modeling.updateProperties(sourceShape, { default: checkbox.checked ? bo : undefined });
        });
        renderPanel();
      });
      body.appendChild(
        el("div", { className: "hl-panel-field" }, [
          el("label", { className: "hl-panel-check" }, [checkbox, " 设为网关的默认流"]),
        ])
      );
    }
  }

  function serviceTaskFields(bo, body) {
    var operator = extensionOf(bo, "spiffworkflow:ServiceTaskOperator");
    if (!operator) {
      body.appendChild(el("p", { className: "hl-panel-problem", text: "服务任务未指定处理器。" }));
      return;
    }
    var rows = [["处理器", operator.get("id")]];
    if (operator.get("resultVariable")) {
      rows.push(["结果变量", operator.get("resultVariable")]);
    }
    var list = operator.get("parameterList");
    ((list && list.get("parameters")) || []).forEach(function (p) {
      rows.push(["参数 " + p.get("id"), p.get("value")]);
    });
    body.appendChild(readOnlyList("服务任务（只读）", rows));
  }

  function eventFields(bo, body) {
    var rows = [];
    (bo.get("eventDefinitions") || []).forEach(function (definition) {
      if (is(definition, "bpmn:TimerEventDefinition")) {
        ["timeDate", "timeDuration", "timeCycle"].forEach(function (kind) {
          var expr = definition.get(kind);
          if (expr) {
            rows.push(["定时器 " + kind, expr.get("body")]);
          }
        });
      } else {
        rows.push(["事件定义", definition.$type.replace("bpmn:", "")]);
      }
    });
    if (is(bo, "bpmn:BoundaryEvent")) {
      rows.push(["中断活动", bo.get("cancelActivity") === false ? "否（不中断）" : "是"]);
    }
    var section = readOnlyList("事件（只读）", rows);
    if (section) {
      body.appendChild(section);
    }
  }

  // The control with the focus, to focus its successor after the panel is rebuilt.
  function focusedControl() {
    var active = document.activeElement;
    if (!active || !els.panel.contains(active)) {
      return null;
    }
    var holder = active.closest("[data-property]");
    return holder
      ? { property: holder.getAttribute("data-property"), value: active.type === "checkbox" ? active.value : null }
      : null;
  }

  function restoreFocus(focus) {
    if (!focus) {
      return;
    }
    var holder = els.panel.querySelector('[data-property="' + focus.property + '"]');
    var target = holder;
    if (holder && focus.value !== null) {
      target = Array.prototype.filter.call(holder.querySelectorAll("input[type=checkbox]"), function (c) {
        return c.value === focus.value;
      })[0];
    }
    if (target && typeof target.focus === "function") {
      target.focus();
    }
  }

  function renderPanel() {
    var panel = els.panel;
    if (!state.modeler || !state.vocab) {
      return;
    }
    var focus = focusedControl();
    buildPanel(panel);
    restoreFocus(focus);
  }

  function buildPanel(panel) {
    panel.textContent = "";
    var element = selected();
    if (!element) {
      panel.appendChild(el("p", { className: "muted", text: "已选中多个元素。选中一个元素可编辑其属性。" }));
      return;
    }
    var bo = element.businessObject;
    if (!bo || !bo.$type) {
      return; // the implicit root while a diagram is being (re)imported
    }
    var rootElement = service("canvas").getRootElement();
    var isRoot = element === rootElement;
    var type = TYPE_LABELS[bo.$type] || bo.$type.replace("bpmn:", "");
    panel.appendChild(
      el("div", { className: "hl-panel-head" }, [
        el("span", { className: "hl-panel-type", text: type }),
        el("h2", { text: bo.get("name") || (isRoot ? "（未命名流程）" : "（未命名）") }),
      ])
    );
    var problems = problemsFor(bo.id);
    if (problems) {
      panel.appendChild(problems);
    }
    var body = el("div", { className: "hl-panel-body", "data-element": bo.id });
    panel.appendChild(body);
    body.appendChild(idField(bo));
    if (!is(bo, "bpmn:Collaboration") && !is(bo, "bpmn:Association")) {
      body.appendChild(nameField(element, bo));
    }
    if (isRoot && is(bo, "bpmn:Process")) {
      processFields(element, bo, body);
      body.appendChild(
        el("p", { className: "hl-panel-help", text: "未选中元素时显示整个流程的属性。点击图中的环节可编辑其属性。" })
      );
    } else if (is(bo, "bpmn:UserTask")) {
      userTaskFields(element, bo, body);
    } else if (is(bo, "bpmn:SequenceFlow")) {
      conditionFields(element, bo, body);
    } else {
      if (is(bo, "bpmn:ServiceTask")) {
        serviceTaskFields(bo, body);
      }
      if (is(bo, "bpmn:Event")) {
        eventFields(bo, body);
      }
      if (is(bo, "bpmn:CallActivity")) {
        body.appendChild(readOnlyList("调用活动（只读）", [["调用的流程", bo.get("calledElement") || "（未指定）"]]));
      }
      if (is(bo, "bpmn:BusinessRuleTask")) {
        var decision = extensionOf(bo, "spiffworkflow:CalledDecisionId");
        body.appendChild(readOnlyList("业务规则（只读）", [["DMN 决策", decision ? decision.get("value") : "（未指定）"]]));
      }
      if (is(bo, "bpmn:ExclusiveGateway") || is(bo, "bpmn:InclusiveGateway")) {
        var dflt = bo.get("default");
        body.appendChild(readOnlyList("网关（只读）", [["默认流", dflt ? dflt.name || dflt.id : "（未设置）"]]));
      }
      var other = otherProperties(bo, []);
      if (other) {
        body.appendChild(other);
      }
    }
  }

  // --- toolbar actions -------------------------------------------------------------------------------

  function conflictMessage(body) {
    state.conflict = true;
    say(
      messageOf(body, "草稿已被他人修改") +
        "。为避免覆盖他人的修改，本页不会再保存：请先用“导出 .bpmn”备份您的修改，然后刷新页面。",
      "error"
    );
  }

  // A name or condition typed but not yet committed (its change event comes on blur).
  function commitTyping() {
    var active = document.activeElement;
    if (active && els.panel.contains(active) && (active.tagName === "INPUT" || active.tagName === "TEXTAREA")) {
      active.blur();
    }
  }

  function save() {
    if (state.busy || !state.modeler) {
      return Promise.resolve(false);
    }
    commitTyping();
    if (state.conflict) {
      conflictMessage({ message: "草稿已被他人修改" });
      return Promise.resolve(false);
    }
    setBusy(true);
    say("正在保存草稿…", "info");
    return currentXml()
      .then(function (xml) {
        return postJson(data("save-url"), { xml: xml, revision: state.revision });
      })
      .then(function (result) {
        if (result.ok) {
          state.revision = result.body.revision;
          state.savedAt = result.body.saved_at_text || "";
          state.savedBy = result.body.saved_by || "";
          setDirty(false);
          say("草稿已保存（第 " + state.revision + " 版）。", "success");
          return true;
        }
        if (result.status === 409) {
          conflictMessage(result.body);
        } else {
          say(messageOf(result.body, "保存失败（服务器返回 " + result.status + "）"), "error");
        }
        return false;
      })
      .catch(function () {
        networkError();
        return false;
      })
      .then(function (ok) {
        setBusy(false);
        return ok;
      });
  }

  function check() {
    if (state.busy || !state.modeler) {
      return Promise.resolve();
    }
    commitTyping();
    setBusy(true);
    say("正在检查…", "info");
    return currentXml()
      .then(function (xml) {
        return postJson(data("check-url"), { xml: xml });
      })
      .then(function (result) {
        if (!result.ok) {
          say(messageOf(result.body, "检查失败（服务器返回 " + result.status + "）"), "error");
          return;
        }
        setProblems(result.body.errors, result.body.warnings);
        var errors = (result.body.errors || []).length;
        var warnings = (result.body.warnings || []).length;
        if (!errors && !warnings) {
          say("检查通过，可以发布。", "success");
        } else if (!errors) {
          say("检查通过，有 " + warnings + " 个提示，请查看图中和下方的标注。", "warning");
        } else {
          say("检查发现 " + errors + " 个错误，已在图中标出，改正后才能发布。", "error");
          focusFirstError();
        }
      })
      .catch(networkError)
      .then(function () {
        setBusy(false);
      });
  }

  function openPublishDialog() {
    if (state.busy || !state.modeler) {
      return;
    }
    if (state.conflict) {
      conflictMessage({ message: "草稿已被他人修改" });
      return;
    }
    var dialog = els.publishDialog;
    var note = dialog.querySelector("textarea");
    note.value = "";
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      dialog.setAttribute("open", "");
    }
    note.focus();
  }

  function closePublishDialog() {
    var dialog = els.publishDialog;
    if (typeof dialog.close === "function") {
      dialog.close();
    } else {
      dialog.removeAttribute("open");
    }
  }

  function publish(note) {
    commitTyping();
    setBusy(true);
    say("正在发布…", "info");
    return currentXml()
      .then(function (xml) {
        // "bind on publish": offered while the sector's process is bound nowhere (see edit.html)
        var bind = els.publishDialog.querySelector('input[name="bind"]');
        return postJson(data("publish-url"), {
          xml: xml,
          note: note,
          revision: state.revision,
          bind: Boolean(bind && bind.checked),
        });
      })
      .then(function (result) {
        if (result.ok) {
          var version = result.body.version;
          state.revision = null;
          state.savedAt = "";
          state.savedBy = "";
          state.publishedVersion = version;
          setProblems([], result.body.warnings || []);
          setDirty(false);
          var text = result.body.created
            ? "已发布为第 " + version + " 版。"
            : "内容与已发布的第 " + version + " 版相同，未产生新版本。";
          say(text, "success", { href: result.body.versions_url || data("versions-url"), text: "查看版本与绑定" });
          return;
        }
        if (result.status === 422 && Array.isArray(result.body.errors)) {
          setProblems(result.body.errors, result.body.warnings);
          say(
            "未通过发布检查，未发布：" + (result.body.errors || []).length + " 个错误已在图中标出。",
            "error"
          );
          focusFirstError();
        } else if (result.status === 409) {
          conflictMessage(result.body);
        } else {
          say(messageOf(result.body, "发布失败（服务器返回 " + result.status + "）"), "error");
        }
      })
      .catch(networkError)
      .then(function () {
        setBusy(false);
      });
  }

  function discard() {
    if (state.busy || state.revision === null) {
      return;
    }
    if (!window.confirm("放弃草稿后，草稿中的全部修改都会丢失（所有管理员共用此草稿）。确定放弃？")) {
      return;
    }
    setBusy(true);
    postJson(data("discard-url"), { revision: state.revision })
      .then(function (result) {
        if (result.ok) {
          state.dirty = false;
          window.location.assign(result.body.redirect || window.location.href);
          return;
        }
        if (result.status === 409) {
          conflictMessage(result.body);
        } else {
          say(messageOf(result.body, "放弃草稿失败（服务器返回 " + result.status + "）"), "error");
        }
        setBusy(false);
      })
      .catch(function () {
        networkError();
        setBusy(false);
      });
  }

  function exportFile() {
    if (!state.modeler) {
      return;
    }
    currentXml().then(function (xml) {
      var blob = new window.Blob([xml], { type: "application/xml" });
      var url = window.URL.createObjectURL(blob);
      var link = el("a", { href: url, download: data("export-name") || "diagram.bpmn", hidden: true });
      document.body.appendChild(link);
      link.click();
      window.setTimeout(function () {
        window.URL.revokeObjectURL(url);
        link.remove();
      }, 1000);
    });
  }

  // Parse first (nothing on the canvas changes), then import; a broken file keeps the current diagram.
  function importFile(file) {
    if (!file) {
      return Promise.resolve();
    }
    if (file.size > 2 * 1024 * 1024) {
      say("文件「" + file.name + "」超过 2 MB，未导入。当前流程图保持不变。", "error");
      return Promise.resolve();
    }
    var previous;
    return file
      .text()
      .then(function (text) {
        return service("moddle")
          .fromXML(text, "bpmn:Definitions")
          .then(function (parsed) {
            var defs = parsed.rootElement;
            var processes = (defs.get("rootElements") || []).filter(function (r) {
              return is(r, "bpmn:Process");
            });
            if (!processes.length) {
              throw new Error("文件中没有流程 (bpmn:process)");
            }
            if (!(defs.get("diagrams") || []).length) {
              throw new Error("文件中没有图形信息 (BPMNDiagram)，无法显示");
            }
            return currentXml();
          })
          .then(function (xml) {
            previous = xml;
            return importXml(text);
          })
          .then(function (result) {
            var ids = (definitions().get("rootElements") || [])
              .filter(function (r) {
                return is(r, "bpmn:Process");
              })
              .map(function (r) {
                return r.id;
              });
            state.problems = [];
            applyProblems();
            setDirty(true);
            var note = "已导入「" + file.name + "」，尚未保存：请检查后保存草稿。";
            if (ids.indexOf(data("key")) < 0) {
              note += " 注意：文件中的流程标识为 " + ids.join("、") + "，与本流程 " + data("key") + " 不同，发布前须改为一致。";
            }
            if (result && result.warnings && result.warnings.length) {
              note += " 有 " + result.warnings.length + " 处内容无法识别，已忽略。";
            }
            say(note, ids.indexOf(data("key")) < 0 ? "warning" : "success");
          });
      })
      .catch(function (error) {
        var reason = error && error.message ? error.message : String(error);
        say("无法导入「" + file.name + "」：不是有效的 BPMN 2.0 流程图文件（" + reason + "）。当前流程图保持不变。", "error");
        if (previous) {
          return importXml(previous).then(function () {
            setDirty(true);
          });
        }
      });
  }

  function bindToolbar() {
    root.addEventListener("click", function (event) {
      var button = event.target.closest("[data-action]");
      if (!button || !root.contains(button) || button.getAttribute("aria-disabled") === "true") {
        return;
      }
      var action = button.getAttribute("data-action");
      if (action === "save") {
        save();
      } else if (action === "check") {
        check();
      } else if (action === "publish") {
        openPublishDialog();
      } else if (action === "import") {
        els.file.value = "";
        els.file.click();
      } else if (action === "export") {
        exportFile();
      } else if (action === "discard") {
        discard();
      } else if (action === "fit") {
        fit();
      } else if (action === "undo") {
        service("commandStack").undo();
      } else if (action === "redo") {
        service("commandStack").redo();
      }
    });
    els.file.addEventListener("change", function () {
      importFile(els.file.files && els.file.files[0]);
    });
    var form = els.publishDialog.querySelector("form");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var note = form.querySelector("textarea").value.trim();
      closePublishDialog();
      publish(note);
    });
    els.publishDialog.querySelector("[data-dialog-cancel]").addEventListener("click", function () {
      closePublishDialog();
    });
    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && (event.key === "s" || event.key === "S")) {
        event.preventDefault();
        save();
      }
    });
    window.addEventListener("beforeunload", function (event) {
      if (state.dirty) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  // --- start ---------------------------------------------------------------------------------------

  function fail(message) {
    root.setAttribute("data-state", "error");
    root.removeAttribute("aria-busy");
    els.canvas.textContent = "";
    els.canvas.appendChild(el("div", { className: "hl-diagram-error", role: "alert", text: message }));
  }

  function start() {
    if (typeof window.BpmnJS !== "function") {
      fail("流程建模组件未加载（缺少 bpmn-js），请联系系统管理员。");
      return;
    }
    root.setAttribute("data-state", "loading");
    root.setAttribute("aria-busy", "true");
    renderStatus();
    Promise.all([
      getText(data("moddle-url"), "application/json").then(function (r) {
        return JSON.parse(r.text);
      }),
      getText(data("vocabulary-url"), "application/json").then(function (r) {
        return JSON.parse(r.text);
      }),
      getText(data("source-url"), "application/xml, text/xml, */*"),
    ])
      .then(function (loaded) {
        state.vocab = loaded[1];
        var source = loaded[2];
        var revision = intOrNull(source.headers.get("X-Draft-Revision") || "");
        if (revision !== state.revision) {
          // the draft moved on between the page and its source: take what was loaded
          state.revision = revision;
          state.savedAt = "";
          state.savedBy = "";
        }
        state.modeler = createModeler(loaded[0]);
        return importXml(source.text);
      })
      .then(function () {
        setDirty(false);
        bindToolbar();
        root.removeAttribute("aria-busy");
        root.setAttribute("data-state", "ready");
        root.hlModeler = state.modeler;
        root.dispatchEvent(new CustomEvent("hl:modeler-ready", { bubbles: true, detail: { modeler: state.modeler } }));
      })
      .catch(function (error) {
        var reason = error && error.message ? error.message : String(error);
        fail("流程图加载失败（" + reason + "），请刷新页面重试。");
      });
  }

  window.HazardModeler = {
    save: save,
    check: check,
    focus: function (id) {
      return focusElement(id);
    },
    problems: function () {
      return state.problems.slice();
    },
  };

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})(window, document);
