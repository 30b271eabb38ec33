// Bundles Operate and Tasklist into `<out>/operate` and `<out>/tasklist`
// (index.html, app.js, app.css each): `node build.mjs <out>`. ui/build.rs
// runs it for the broker's embedded assets; pinned packages (package-lock.json)
// and fixed esbuild options make the output the same on every machine.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

if (!process.argv[2]) {
  console.error("usage: node build.mjs <output directory>");
  process.exit(2);
}
const out = resolve(process.argv[2]);
const here = dirname(fileURLToPath(import.meta.url));

for (const app of ["operate", "tasklist"]) {
  const dir = join(out, app);
  mkdirSync(dir, { recursive: true });
  await build({
    absWorkingDir: here,
    entryPoints: { app: `src/${app}/main.js` },
    outdir: dir,
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2020",
    legalComments: "linked",
    loader: { ".svg": "dataurl", ".woff": "dataurl", ".woff2": "dataurl", ".ttf": "dataurl", ".eot": "dataurl" },
    jsx: "automatic",
    jsxImportSource: "preact",
    logLevel: "warning",
  });
  copyFileSync(join(here, "src", app, "index.html"), join(dir, "index.html"));
}
