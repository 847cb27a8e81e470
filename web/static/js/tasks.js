/* Task pages: upload photos as soon as they are chosen, and confirm dangerous actions.
 *
 * Everything works without this script: files then go up with the form (or with its 上传 button).
 * A photo/file field is <fieldset class="upload-field" data-field=… data-upload-url=…> holding
 * a [data-attachment-list] and an <input type=file>; each uploaded file becomes a checked
 * checkbox named after the field, like the ones the server renders.
 */
(function () {
  "use strict";

  var meta = document.querySelector('meta[name="csrf-token"]');
  var csrf = meta ? meta.getAttribute("content") : "";

  function showError(fieldset, text) {
    var node = fieldset.querySelector(".upload-error");
    if (!node) {
      node = document.createElement("span");
      node.className = "field-error upload-error";
      node.setAttribute("role", "alert");
      fieldset.appendChild(node);
    }
    node.textContent = text;
    node.hidden = !text;
  }

  function messageOf(body) {
    var parts = [];
    if (body && body.errors) {
      Object.keys(body.errors).forEach(function (key) {
        [].concat(body.errors[key]).forEach(function (m) { parts.push(String(m)); });
      });
    }
    return parts.length ? parts.join("；") : (body && body.message) || "";
  }

  function tile(field, attachment, keepLabel) {
    var li = document.createElement("li");
    li.className = "attachment-tile";
    var keep = document.createElement("label");
    keep.className = "attachment-keep";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.name = field;
    box.value = String(attachment.id);
    box.checked = true;
    box.setAttribute("aria-label", keepLabel + " " + attachment.filename);
    keep.appendChild(box);
    li.appendChild(keep);
    var link = document.createElement("a");
    link.href = attachment.url;
    link.target = "_blank";
    link.rel = "noopener";
    if (attachment.thumb_url) {
      var img = document.createElement("img");
      img.src = attachment.thumb_url;
      img.alt = attachment.filename;
      img.width = 96;
      img.height = 96;
      link.appendChild(img);
    } else {
      var icon = document.createElement("span");
      icon.className = "file-icon";
      icon.textContent = "PDF";
      link.appendChild(icon);
    }
    var name = document.createElement("span");
    name.className = "attachment-name";
    name.textContent = attachment.filename;
    link.appendChild(name);
    li.appendChild(link);
    if (attachment.meta) {
      // 拍摄于 … · GPS, formatted by the server like the tiles it renders
      var meta = document.createElement("span");
      meta.className = "attachment-meta small muted";
      meta.textContent = attachment.meta;
      li.appendChild(meta);
    }
    return li;
  }

  function setUp(fieldset) {
    var input = fieldset.querySelector('input[type="file"]');
    var list = fieldset.querySelector("[data-attachment-list]");
    var button = fieldset.querySelector(".upload-button");
    if (!input || !list || !window.fetch || !window.FormData) {
      return;
    }
    if (button) {
      button.hidden = true;
    }
    input.addEventListener("change", function () {
      if (!input.files || !input.files.length) {
        return;
      }
      var data = new FormData();
      data.append("field", fieldset.getAttribute("data-field"));
      Array.prototype.forEach.call(input.files, function (file) { data.append("file", file); });
      fieldset.classList.add("uploading");
      showError(fieldset, "");
      fetch(fieldset.getAttribute("data-upload-url"), {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "Accept": "application/json", "X-CSRF-Token": csrf },
      })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (result) {
          if (!result.ok) {
            showError(fieldset, messageOf(result.body));
            return;
          }
          result.body.attachments.forEach(function (a) {
            list.appendChild(tile(fieldset.getAttribute("data-field"), a, fieldset.getAttribute("data-keep-label") || ""));
          });
          input.value = "";
        })
        .catch(function () {
          // the files stay chosen and go up with the form
          showError(fieldset, fieldset.getAttribute("data-upload-failed") || "");
        })
        .then(function () { fieldset.classList.remove("uploading"); });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("fieldset.upload-field[data-upload-url]"), setUp);

  // /tasks/<id>#delegate (the inbox's 转办 link) opens the delegate panel
  if (window.location.hash) {
    var target = document.getElementById(window.location.hash.slice(1));
    if (target && target.tagName === "DETAILS") {
      target.open = true;
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) {
        event.preventDefault();
      }
    });
  });
})();
