// Starts the vendored Swagger UI on /api/v1/docs (a file, not an inline script: the
// site's Content-Security-Policy allows scripts from 'self' only).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.getAttribute("data-openapi-url"),
    domNode: root,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // The API authenticates by session cookie plus X-CSRF-Token, or by an applicant's
    // bearer token; "Try it out" sends the browser's cookies like any same-origin call.
    withCredentials: true
  });
})();
