// Starts Swagger UI on /api/docs (web/templates/api/docs.html); loaded after the vendor bundle.
(function () {
  "use strict";

  function start() {
    var node = document.getElementById("swagger-ui");
    if (!node || typeof window.SwaggerUIBundle !== "function") {
      return;
    }
    var csrf = document.querySelector('meta[name="csrf-token"]');
    window.SwaggerUIBundle({
      url: node.getAttribute("data-spec-url"),
      dom_id: "#swagger-ui",
      layout: "BaseLayout",
      presets: [window.SwaggerUIBundle.presets.apis],
      deepLinking: true,
      // No validator badge: it would send the document to an outside service.
      validatorUrl: null,
      // "Try it out" with the browser session needs the CSRF header on writes; a bearer token
      // set through "Authorize" needs nothing.
      requestInterceptor: function (req) {
        if (csrf && !req.headers.Authorization) {
          req.headers["X-CSRF-Token"] = csrf.getAttribute("content");
        }
        return req;
      },
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
