// GOV.UK Frontend's body classes, set before anything is drawn: js-enabled (styles for pages with
// JavaScript) and govuk-frontend-supported (browsers with ES modules, which init.js needs). GOV.UK's
// template does this with an inline script; this provider's CSP allows only script files.
document.body.className += " js-enabled" +
  ("noModule" in HTMLScriptElement.prototype ? " govuk-frontend-supported" : "");
