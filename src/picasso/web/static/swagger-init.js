// Starts the interactive API docs from locally served Swagger UI assets (no CDN,
// no inline script, so the page works under the app's Content-Security-Policy).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
