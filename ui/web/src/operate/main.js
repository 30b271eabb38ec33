// Operate: see where instances stand and repair them, through the REST API v2.
import "../common/style.css";
import "bpmn-js/dist/assets/diagram-js.css";
import "bpmn-js/dist/assets/bpmn-js.css";
import "./operate.css";
import { start } from "../common/shell.js";
import { dashboard } from "./dashboard.js";
import { decision, decisions } from "./decisions.js";
import { instance } from "./instance.js";
import { instances } from "./instances.js";

start({
  name: "Operate",
  nav: [
    ["/", "Dashboard"],
    ["/instances", "Processes"],
    ["/decisions", "Decisions"],
  ],
  routes: [
    [/^\/$/, dashboard],
    [/^\/instances(?:\?.*)?$/, instances],
    [/^\/instances\/(\d+)$/, instance],
    [/^\/decisions$/, decisions],
    [/^\/decisions\/([\w-]+)$/, decision],
  ],
});
