// serve.mjs: a tiny static file server for the live demo (no dependencies).
//
//   node wasm/serve.mjs [port]        # or PORT=8765; port 0 picks a free port
//
// Layout (paths relative to the repository root):
//   /                -> wasm/demo/            (index.html, demo.mjs, style.css)
//   /js/             -> wasm/js/              (nmm.mjs)
//   /nmm_wasm.wasm   -> target/wasm32-unknown-unknown/release/nmm_wasm.wasm, or $NMM_WASM
//   /models/X.nmmw   -> models/X.nmmw         (only *.nmmw files)
//
// Binds 127.0.0.1 only. Prints "serving http://127.0.0.1:PORT/" once listening. Tests import
// `startServer` instead of spawning a process.
import { createServer } from "node:http";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, "..");

export const DEFAULT_WASM = join(ROOT, "target", "wasm32-unknown-unknown", "release", "nmm_wasm.wasm");

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".md": "text/plain; charset=utf-8",
  ".wasm": "application/wasm",
  ".nmmw": "application/octet-stream",
};

/**
 * Maps a URL path to a file, or null. Each mount is a directory; the decoded relative path
 * must stay inside it (no "..", no absolute paths, no NUL, no backslashes).
 */
function resolvePath(urlPath, wasmPath) {
  let p;
  try {
    p = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (p.includes("\0") || p.includes("\\")) return null;
  if (p === "/nmm_wasm.wasm") return wasmPath;
  const mounts = [
    ["/js/", join(HERE, "js"), null],
    ["/models/", join(ROOT, "models"), ".nmmw"],
    ["/", join(HERE, "demo"), null],
  ];
  for (const [prefix, dir, onlyExt] of mounts) {
    if (!p.startsWith(prefix)) continue;
    let rel = p.slice(prefix.length);
    if (rel === "" || rel.endsWith("/")) rel += "index.html";
    const segs = rel.split("/");
    if (segs.some((s) => s === ".." || s === "." || s === "" || s.startsWith("."))) return null;
    if (onlyExt && extname(rel) !== onlyExt) return null;
    const file = resolve(dir, ...segs);
    if (!file.startsWith(dir + sep)) return null;
    return file;
  }
  return null;
}

/**
 * Starts the server; resolves to { server, port, url } once listening.
 * Options: port (0 = any free port), host (default 127.0.0.1), wasm (module path), quiet.
 */
export function startServer({ port = 8765, host = "127.0.0.1", wasm, quiet = false } = {}) {
  const wasmPath = resolve(wasm ?? process.env.NMM_WASM ?? DEFAULT_WASM);
  const server = createServer(async (req, res) => {
    const send = (code, text) => {
      res.writeHead(code, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
      res.end(req.method === "HEAD" ? undefined : text + "\n");
    };
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("allow", "GET, HEAD");
      return send(405, "method not allowed");
    }
    let urlPath;
    try {
      urlPath = new URL(req.url, "http://localhost").pathname;
    } catch {
      return send(400, "bad request");
    }
    const file = resolvePath(urlPath, wasmPath);
    if (!file) return send(404, `not found: ${urlPath}`);
    let st;
    try {
      st = await stat(file);
    } catch {
      const hint = file === wasmPath
        ? " (build it: cargo build -p nmm-wasm --release --target wasm32-unknown-unknown, or set NMM_WASM)"
        : "";
      return send(404, `not found: ${urlPath}${hint}`);
    }
    if (!st.isFile()) return send(404, `not found: ${urlPath}`);
    res.writeHead(200, {
      "content-type": MIME[extname(file)] ?? "application/octet-stream",
      "content-length": st.size,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
    });
    if (req.method === "HEAD") return res.end();
    const stream = createReadStream(file);
    stream.on("error", () => res.destroy());
    stream.pipe(res);
  });
  return new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
      const actual = server.address().port;
      const url = `http://${host}:${actual}/`;
      if (!quiet) console.log(`serving ${url}`);
      ok({ server, port: actual, url });
    });
  });
}

const isMain = process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  const arg = process.argv[2] ?? process.env.PORT ?? "8765";
  const port = Number(arg);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve.mjs: bad port ${JSON.stringify(arg)} (0..65535; 0 picks a free one)`);
    process.exit(2);
  }
  try {
    await startServer({ port });
  } catch (e) {
    console.error(`serve.mjs: ${e.message}`);
    process.exit(1);
  }
}
