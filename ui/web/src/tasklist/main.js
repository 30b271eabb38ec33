// Tasklist: the user tasks people work on, through the REST API v2.
import "../common/style.css";
import "@bpmn-io/form-js-viewer/dist/assets/form-js.css";
import { start } from "../common/shell.js";
import { tasks } from "./tasks.js";

start({
  name: "Tasklist",
  nav: [["/", "Tasks"]],
  routes: [[/^\/$/, tasks]],
});
