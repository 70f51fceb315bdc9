// Compiles the pure modules (no DOM needed; signaling only needs a WebSocket, which the tests fake) to plain ESM under test/.build/ so `node --test` can
// import them. Run by `npm test` before the tests.
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const webDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const pure = ["jwt", "backoff", "protocol", "callstate", "speaker", "pageparams", "mediaerrors", "signaling", "mix", "interpretation"];
// The operator dashboard's pure parts (stream and store only need a WebSocket, faked by the tests).
const operator = ["model", "series", "grid", "reason", "events", "router", "auth", "format", "store", "stream"];

await build({
  absWorkingDir: webDir,
  entryPoints: [...pure.map((name) => `src/${name}.ts`), ...operator.map((name) => `src/operator/${name}.ts`)],
  outbase: "src",
  outdir: "test/.build",
  bundle: true,
  format: "esm",
  platform: "neutral",
  target: "node20",
  logLevel: "warning",
});
