// wasm/serve.mjs as a process: announces its port, serves the layout with the right types,
// and nothing outside it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { request } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SERVE = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "serve.mjs");

/** A raw GET (no URL normalisation, so "../" reaches the server as sent). */
function get(port, path, method = "GET") {
  return new Promise((ok, fail) => {
    const req = request({ host: "127.0.0.1", port, path, method }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => ok({ status: res.statusCode, type: res.headers["content-type"], body: Buffer.concat(chunks) }));
    });
    req.on("error", fail);
    req.end();
  });
}

test("serve.mjs: port 0, layout, MIME types, no traversal", { timeout: 30_000 }, async () => {
  const child = spawn(process.execPath, [SERVE, "0"], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    const line = await new Promise((ok, fail) => {
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("\n")) ok(out.split("\n")[0]);
      });
      child.stderr.on("data", (d) => (err += d));
      child.on("exit", (code) => fail(new Error(`serve.mjs exited (${code}): ${err}`)));
      setTimeout(() => fail(new Error(`serve.mjs printed nothing in 10 s: ${err}`)), 10_000).unref();
    });
    const m = line.match(/^serving http:\/\/127\.0\.0\.1:(\d+)\/$/);
    assert.ok(m, `announcement: ${JSON.stringify(line)}`);
    const port = Number(m[1]);
    assert.ok(port > 0);

    const expect = [
      ["/", 200, /^text\/html/],
      ["/index.html", 200, /^text\/html/],
      ["/demo.mjs", 200, /^text\/javascript/],
      ["/style.css", 200, /^text\/css/],
      ["/js/nmm.mjs", 200, /^text\/javascript/],
      ["/nmm_wasm.wasm", 200, /^application\/wasm$/],
      ["/models/mlp_p06_1.nmmw", 200, /^application\/octet-stream$/],
      ["/models/README.md", 404], // only weight files under /models/
      ["/nope.html", 404],
      ["/../serve.mjs", 404],
      ["/js/../../Cargo.toml", 404],
      ["/js/%2e%2e/%2e%2e/Cargo.toml", 404],
      ["/models/..%2f..%2fCargo.toml", 404],
      ["/js/..%5c..%5cCargo.toml", 404],
      ["/%2e%2e/%2e%2e/etc/passwd", 404],
      ["/js/%00.mjs", 404],
      ["/js/", 404], // no listings
      ["/.git/config", 404],
    ];
    for (const [path, status, type] of expect) {
      const r = await get(port, path);
      assert.equal(r.status, status, `GET ${path}`);
      if (type) assert.match(r.type, type, `type of ${path}`);
    }
    const wasm = await get(port, "/nmm_wasm.wasm");
    assert.deepEqual([...wasm.body.subarray(0, 4)], [0x00, 0x61, 0x73, 0x6d], "a wasm module");
    assert.equal((await get(port, "/", "POST")).status, 405);
    assert.equal((await get(port, "/", "HEAD")).status, 200);
  } finally {
    child.kill();
  }
});
