// Starts Swagger UI on /api/docs/. Kept out of the HTML so that the page needs no inline script
// under its Content-Security-Policy.
//
// "Try it out" is off: Writ's API requests need body-bound signed tokens, which a browser form
// cannot produce. The online validator badge is off (it would send the spec's URL to a third
// party), and configuration from the page's query string is ignored.
"use strict";
window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  tryItOutEnabled: false,
  supportedSubmitMethods: [],
  validatorUrl: "none",
  queryConfigEnabled: false,
});
