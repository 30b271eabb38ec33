// Operate: see where instances stand and repair them, through the REST API v2.
import "../common/style.css";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import { start } from "../common/shell.js";
import { dashboard } from "./dashboard.js";

start({
  name: "Operate",
  nav: [["/", "Dashboard"]],
  routes: [[/^\/$/, dashboard]],
});
