// The dashboard's progressive enhancement: GOV.UK Frontend's components, then dibot's own
// (each page works in full without this file).
import { initAll } from "./govuk/govuk-frontend.min.js";

initAll();
