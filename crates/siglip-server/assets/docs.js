// Swagger UI on this server's own document. Everything it loads comes from this server (the
// page's Content-Security-Policy says so): no CDN, and no call to the public validator.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: true,
  displayRequestDuration: true,
  persistAuthorization: false,
});
