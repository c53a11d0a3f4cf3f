// Starts GOV.UK Frontend's components on the page (error summary focus, password show/hide, the
// service navigation's menu, ...). An ES module, so browsers without module support skip it.
import { initAll } from "./govuk/govuk-frontend.min.js";

initAll();
