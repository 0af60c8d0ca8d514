// Starts Swagger UI (served by cswb itself, no CDN) on the OpenAPI document named by the page.
window.addEventListener("load", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.openapi,
    dom_id: "#swagger-ui",
    deepLinking: true,
    defaultModelsExpandDepth: 0
  });
});
