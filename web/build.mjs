// Builds the booth web client: `node build.mjs [outdir]` (default `dist`, relative to the current
// directory). Bundles every entry in src/ to minified ESM with linked sourcemaps and copies
// static/* (HTML, CSS) beside them. The output depends only on the sources, not on the outdir's
// location or the clock: esbuild writes in memory against a fixed virtual outdir, and the files are
// then written under the real one. Nothing is fetched from the network.
import { build } from "esbuild";
import { copyFile, mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] ?? "dist");
// Fixed virtual outdir so that sourcemap paths read `../src/…` wherever the real outdir is.
const virtualOutDir = join(webDir, "dist");

/** Entry points: one per page (a page that imports CSS also gets `<name>.css`, e.g. operator.css with uPlot's). */
const entries = ["src/join.ts", "src/operator.ts"];

const result = await build({
  absWorkingDir: webDir,
  entryPoints: entries,
  outdir: virtualOutDir,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: ["chrome110", "firefox115", "safari16"],
  minify: true,
  sourcemap: "linked",
  sourcesContent: true,
  legalComments: "none",
  charset: "utf8",
  write: false,
  logLevel: "warning",
});

// Never wipe the sources: the outdir must not be this folder or one of its ancestors.
const fromOut = relative(outDir, webDir);
if (fromOut === "" || !fromOut.startsWith("..")) {
  console.error(`refusing to build into ${outDir}: it contains the web sources`);
  process.exit(2);
}
await rm(outDir, { recursive: true, force: true });
await mkdir(outDir, { recursive: true });
for (const file of result.outputFiles) {
  const target = join(outDir, relative(virtualOutDir, file.path));
  await mkdir(dirname(target), { recursive: true });
  await writeFile(target, file.contents);
}
const staticDir = join(webDir, "static");
for (const name of (await readdir(staticDir)).sort()) {
  await copyFile(join(staticDir, name), join(outDir, name));
}
console.log(`web client built into ${outDir}`);
