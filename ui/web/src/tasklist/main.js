// Tasklist: the user tasks people work on, and starting processes, through
// the REST API v2.
import "../common/style.css";
import "@bpmn-io/form-js-viewer/dist/assets/form-js.css";
import "./tasklist.css";
import { start } from "../common/shell.js";
import { processes, startProcess } from "./processes.js";
import { task } from "./task.js";
import { tasks } from "./tasks.js";

start({
  name: "Tasklist",
  nav: [["/", "Tasks"], ["/processes", "Start a process"]],
  routes: [
    [/^\/(?:\?.*)?$/, tasks],
    [/^\/tasks\/(\d+)$/, task],
    [/^\/processes$/, processes],
    [/^\/processes\/(\d+)$/, startProcess],
  ],
});
