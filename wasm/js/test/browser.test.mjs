// The live demo in headless Chromium: the page loads the module through wasm/serve.mjs, steps it
// every animation frame, and its numbers and plots follow the physics when the I slider moves.
//
//   cd wasm && npm install && node --test js/test/browser.test.mjs
//
// Environment: CHROMIUM (default /usr/bin/chromium), NMM_SCREENSHOT (PNG path; default a file in
// the temp directory), NMM_WASM (the module, as for serve.mjs), NMM_SKIP_BROWSER=1 to skip.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer, DEFAULT_WASM } from "../../serve.mjs";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const SCREENSHOT = process.env.NMM_SCREENSHOT || join(tmpdir(), "nmm-demo-screenshot.png");
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const WAIT = { timeout: 20_000 };

/** Runs `f` but gives up after `ms` (cleanup must not hang the test run). */
function within(ms, what, f) {
  let timer;
  return Promise.race([
    Promise.resolve().then(f),
    new Promise((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** The demo's state plus the r(t) canvas: a hash of its PNG and where its red trace lies. */
async function snapshot(page) {
  const s = await page.evaluate(() => {
    const d = window.nmmDemo;
    const c = document.getElementById("plot-r");
    const url = c.toDataURL("image/png");
    const [R, G, B] = [1, 3, 5].map((i) => parseInt(d.colors.r.slice(i, i + 2), 16));
    const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    let sy = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] > 200 && Math.abs(px[i] - R) + Math.abs(px[i + 1] - G) + Math.abs(px[i + 2] - B) < 60) {
        n++;
        sy += Math.floor(i / 4 / c.width);
      }
    }
    return {
      frames: d.frames,
      t: d.t,
      lastR: d.lastR,
      lastV: d.lastV,
      meanR: d.meanR,
      model: d.model,
      params: { ...d.params },
      error: d.error,
      url,
      tracePixels: n,
      traceY: n ? sy / n / c.height : NaN, // 0 = top of the canvas, 1 = bottom
    };
  });
  s.hash = createHash("sha256").update(s.url).digest("hex").slice(0, 16);
  delete s.url;
  return s;
}

async function waitFrames(page, n) {
  const f = await page.evaluate(() => window.nmmDemo.frames);
  await page.waitForFunction((target) => window.nmmDemo.frames >= target, f + n, WAIT);
}

/** Moves a range slider the way a person does: value, then `input`, then `change`. */
async function slide(page, id, value) {
  await page.evaluate(
    ([id, value]) => {
      const s = document.getElementById(id);
      s.value = String(value);
      s.dispatchEvent(new Event("input", { bubbles: true }));
      s.dispatchEvent(new Event("change", { bubbles: true }));
    },
    [id, value],
  );
}

test("live demo: I = 3 switches the bistable node up, in the numbers and on the canvas", { timeout: 180_000 }, async (t) => {
  if (process.env.NMM_SKIP_BROWSER === "1") {
    t.skip("NMM_SKIP_BROWSER=1: headless-browser test skipped");
    return;
  }
  assert.ok(
    existsSync(CHROMIUM),
    `Chromium not found at ${CHROMIUM}: apt-get install chromium (or set CHROMIUM=/path/to/chromium; NMM_SKIP_BROWSER=1 skips this test)`,
  );
  const wasm = process.env.NMM_WASM || DEFAULT_WASM;
  assert.ok(
    existsSync(wasm),
    `no module at ${wasm}: cargo build -p nmm-wasm --release --target wasm32-unknown-unknown (or set NMM_WASM)`,
  );
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch (e) {
    assert.fail(`playwright-core is not installed (cd wasm && npm ci): ${e.message}`);
  }

  let server;
  let context;
  let page;
  const userDataDir = mkdtempSync(join(tmpdir(), "nmm-chromium-"));
  const pageErrors = [];
  try {
    ({ server } = await startServer({ port: 0, quiet: true }));
    const url = `http://127.0.0.1:${server.address().port}/`;
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 1000 },
      timeout: 60_000,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (e) => pageErrors.push(`pageerror: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") pageErrors.push(`console.error: ${m.text()}`);
    });
    page.on("requestfailed", (r) => pageErrors.push(`request failed: ${r.url()}`));

    await page.goto(url, WAIT);
    await page.waitForFunction(() => window.nmmDemo?.ready === true || window.nmmDemo?.error, null, WAIT);
    const boot = await snapshot(page);
    assert.equal(boot.error, null, `the page shows an error: ${boot.error}`);
    assert.deepEqual(pageErrors, []);
    for (const id of ["eta", "J", "p", "I", "noise"]) {
      assert.equal(await page.locator(`input[type=range]#${id}`).count(), 1, `slider #${id}`);
    }
    await waitFrames(page, 5);
    const running = await snapshot(page);
    assert.ok(running.frames > boot.frames && running.t > boot.t, "frames advance the model");

    for (const kind of ["mlp", "mpr"]) {
      if ((await page.evaluate(() => window.nmmDemo.model)) !== kind) {
        await page.selectOption("#model", kind);
      }
      await waitFrames(page, 30); // 60 ms of model time at 200 ticks/frame: settled, window full
      const before = await snapshot(page);
      assert.equal(before.model, kind);
      assert.deepEqual(
        { eta: before.params.eta, J: before.params.J, p: before.params.p, I: before.params.I, noise: before.params.noise },
        { eta: -5, J: 15, p: 1, I: 0, noise: 0 },
        "the bistable defaults",
      );
      assert.ok(before.lastR > 0 && before.lastR < 0.2, `${kind}: low state first, r = ${before.lastR} kHz`);
      assert.ok(before.tracePixels > 100, `${kind}: the r(t) trace is drawn (${before.tracePixels} px)`);

      await slide(page, "I", 3);
      assert.equal(await page.evaluate(() => window.nmmDemo.params.I), 3);
      await waitFrames(page, 20); // 40 ms: the 20-ms window shows only the new state
      const after = await snapshot(page);
      t.diagnostic(
        `${kind}: I 0 -> 3: r ${before.lastR.toFixed(4)} -> ${after.lastR.toFixed(4)} kHz, ` +
          `mean r shown ${before.meanR.toFixed(4)} -> ${after.meanR.toFixed(4)}, ` +
          `trace at ${(100 * before.traceY).toFixed(1)}% -> ${(100 * after.traceY).toFixed(1)}% of the canvas height, ` +
          `canvas ${before.hash} -> ${after.hash}`,
      );
      // (a) the physics: the node switches to the high-rate state
      assert.ok(after.lastR > 2 * before.lastR, `${kind}: r rises: ${before.lastR} -> ${after.lastR}`);
      assert.ok(after.lastR > 1.0, `${kind}: high state, r = ${after.lastR} kHz`);
      assert.ok(after.meanR > 2 * before.meanR, `${kind}: mean r shown ${before.meanR} -> ${after.meanR}`);
      // (b) the plot: a different image, with the trace drawn clearly higher up
      assert.notEqual(after.hash, before.hash, `${kind}: the r(t) canvas changed`);
      assert.ok(before.traceY > 0.6, `${kind}: the low-state trace lies low on the canvas: ${before.traceY}`);
      assert.ok(
        after.traceY < before.traceY - 0.1,
        `${kind}: the r trace moved up on the canvas: ${before.traceY} -> ${after.traceY}`,
      );

      // bistability: back to I = 0, the node stays high
      await slide(page, "I", 0);
      await waitFrames(page, 20);
      const held = await snapshot(page);
      assert.ok(held.lastR > 0.8, `${kind}: stays in the high state at I = 0, r = ${held.lastR} kHz`);
      const log = await page.locator("#log").innerText();
      assert.match(log, /I = 3\.00/);
      assert.match(log, /I = 0\.00/);
    }
    assert.match(await page.locator("#out-j-note").innerText(), /J·p/, "MPR's coupling J·p is shown");
    assert.deepEqual(pageErrors, [], "no errors in the page");

    // module errors show up in the page: a negative noise amplitude is the module's NmmError
    await page.fill("#sigmaR", "-1");
    await page.locator("#sigmaR").dispatchEvent("change");
    const box = page.locator("#error");
    await box.waitFor({ state: "visible", ...WAIT });
    const msg = await box.innerText();
    assert.match(msg, /NmmError: noise amplitudes \(-1, 0\) must be finite and >= 0/);
    assert.match(await page.evaluate(() => window.nmmDemo.error), /NmmError/);
    await page.fill("#sigmaR", "0");
    await page.locator("#sigmaR").dispatchEvent("change");
    await box.waitFor({ state: "hidden", ...WAIT });
    await waitFrames(page, 3); // still running
  } finally {
    if (page) {
      try {
        await within(15_000, "screenshot", () => page.screenshot({ path: SCREENSHOT, fullPage: true }));
        t.diagnostic(`screenshot: ${SCREENSHOT}`);
      } catch (e) {
        t.diagnostic(`no screenshot: ${e.message}`);
      }
    }
    if (context) await within(15_000, "closing Chromium", () => context.close()).catch((e) => t.diagnostic(e.message));
    if (server) {
      server.closeAllConnections();
      await new Promise((ok) => server.close(ok));
    }
    rmSync(userDataDir, { recursive: true, force: true });
  }
});
