/* The form editor and the policy editor of /design (web/pages/design.py).
 *
 * Everything here is a shortcut: without script the same buttons post the page and the server
 * re-renders it (add, remove, move a field row), and the type attributes of a field row are
 * shown or hidden by CSS (:has on the type select).
 *
 * Form editor: 添加字段 clones <template id="design-field-template"> (row id __ID__), 上移/下移/删除
 * move or drop the row in place; rows keep their ids, their order is the order of their hidden
 * "row" inputs.
 * Policy editor: editing a greyed (inherited) value ticks its 覆盖 box; a rung's inline offset
 * amount and the value's row in the values table stay in step.
 * Buttons with data-confirm ask first.
 */
(function () {
  "use strict";

  function closest(element, selector) {
    while (element && element.nodeType === 1) {
      if (element.matches(selector)) return element;
      element = element.parentElement;
    }
    return null;
  }

  // --- confirmations ----------------------------------------------------------------------------
  document.addEventListener("click", function (event) {
    var button = closest(event.target, "button[data-confirm]");
    if (button && !window.confirm(button.getAttribute("data-confirm"))) event.preventDefault();
  });

  // --- the form editor ----------------------------------------------------------------------------
  var list = document.querySelector("[data-field-rows]");
  var template = document.getElementById("design-field-template");

  function renumber() {
    var rows = list.querySelectorAll("[data-field-row]");
    for (var i = 0; i < rows.length; i++) {
      var label = rows[i].querySelector("[data-row-number]");
      if (label) label.textContent = label.textContent.replace(/\d+/, String(i + 1));
    }
  }

  function nextId() {
    var max = -1;
    var inputs = list.querySelectorAll('input[name="row"]');
    for (var i = 0; i < inputs.length; i++) {
      var n = parseInt(inputs[i].value, 10);
      if (!isNaN(n) && n > max) max = n;
    }
    return String(max + 1);
  }

  if (list && template) {
    document.addEventListener("click", function (event) {
      var button = closest(event.target, 'button[name="action"]');
      if (!button || !list.contains(button) && !button.hasAttribute("data-add-field")) return;
      var value = button.value || "";
      var move = /^(remove|up|down):(\d+)$/.exec(value);
      if (move) {
        event.preventDefault();
        var row = closest(button, "[data-field-row]");
        if (!row) return;
        if (move[1] === "remove") {
          var focusTarget = row.nextElementSibling || row.previousElementSibling;
          row.parentNode.removeChild(row);
          if (focusTarget) {
            var first = focusTarget.querySelector("input[type=text]");
            if (first) first.focus();
          }
        } else if (move[1] === "up" && row.previousElementSibling) {
          row.parentNode.insertBefore(row, row.previousElementSibling);
          button.focus();
        } else if (move[1] === "down" && row.nextElementSibling) {
          row.parentNode.insertBefore(row.nextElementSibling, row);
          button.focus();
        }
        renumber();
      } else if (value === "add") {
        event.preventDefault();
        var html = template.innerHTML.replace(/__ID__/g, nextId());
        list.insertAdjacentHTML("beforeend", html);
        renumber();
        var added = list.lastElementChild;
        var name = added && added.querySelector('input[name$="-name"]');
        if (name) name.focus();
      }
    });
  }

  // --- the policy editor --------------------------------------------------------------------------
  var policy = document.getElementById("design-policy");
  if (!policy) return;

  function valueRow(name) {
    var rows = policy.querySelectorAll("tr[data-value-name]");
    for (var i = 0; i < rows.length; i++) {
      if (rows[i].getAttribute("data-value-name") === name) return rows[i];
    }
    return null;
  }

  function override(row) {
    var box = row.querySelector("input[data-override]");
    if (box && !box.checked) box.checked = true;
    row.classList.remove("is-inherited");
  }

  function syncRungs(row) {
    var name = row.getAttribute("data-value-name");
    var amount = row.querySelector("[data-value-amount]").value;
    var unit = row.querySelector("[data-value-unit]").value;
    var rungs = policy.querySelectorAll("[data-rung]");
    for (var i = 0; i < rungs.length; i++) {
      var select = rungs[i].querySelector("select[data-rung-offset]");
      if (!select || select.value !== name) continue;
      var a = rungs[i].querySelector("[data-offset-value]");
      var u = rungs[i].querySelector("[data-offset-unit]");
      if (a) a.value = amount;
      if (u) u.value = unit;
    }
  }

  function onEdit(event) {
    var target = event.target;
    var row = closest(target, "tr[data-value-name]");
    if (row) {
      if (target.hasAttribute("data-override")) {
        row.classList.toggle("is-inherited", !target.checked);
        return;
      }
      override(row);
      syncRungs(row);
      return;
    }
    var rung = closest(target, "[data-rung]");
    if (!rung) return;
    var select = rung.querySelector("select[data-rung-offset]");
    var valueInput = rung.querySelector("[data-offset-value]");
    var unitInput = rung.querySelector("[data-offset-unit]");
    if (target === select) {
      // another value times the rung: show its amount (and treat it as unchanged)
      var chosen = valueRow(select.value);
      var box = valueInput && valueInput.parentElement;
      if (box) box.hidden = !chosen;
      if (chosen && valueInput && unitInput) {
        valueInput.value = chosen.querySelector("[data-value-amount]").value;
        unitInput.value = chosen.querySelector("[data-value-unit]").value;
        rung.querySelector("[data-offset-orig-value]").value = valueInput.value;
        rung.querySelector("[data-offset-orig-unit]").value = unitInput.value;
      }
      return;
    }
    if (target === valueInput || target === unitInput) {
      var offsetRow = select && valueRow(select.value);
      if (!offsetRow) return;
      offsetRow.querySelector("[data-value-amount]").value = valueInput.value;
      offsetRow.querySelector("[data-value-unit]").value = unitInput.value;
      override(offsetRow);
      syncRungs(offsetRow);
    }
  }

  policy.addEventListener("input", onEdit);
  policy.addEventListener("change", onEdit);
})();
