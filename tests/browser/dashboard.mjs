// Drives headless Chromium (Debian's /usr/bin/chromium, or $CHROMIUM) through puppeteer-core
// for tests/integration/dashboard.lua: one scenario per call, its observations as one JSON line
// on stdout. On a failed expectation inside a scenario, a screenshot goes to $SHOT.
//   node dashboard.mjs SCENARIO BASE_URL [ARGS…]
import puppeteer from "puppeteer-core";
import fs from "node:fs";

const [scenario, base, ...args] = process.argv.slice(2);
const out = {};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const page = await browser.newPage();
await page.setViewport({ width: 1400, height: 900 });
const dialogs = [];
page.on("dialog", async (d) => { dialogs.push(d.message()); await d.accept(); });
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

// until(fn, ms): polls the page's state (the test's own bounded wait, not the page's).
async function until(fn, ms = 30000) { // (30 s: Chromium on a loaded 2-core machine is slow)
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    try { if (await fn()) return Date.now() - t0; } catch (e) { /* the page is re-rendering */ }
    await sleep(50);
  }
  return -1;
}
const rowStatus = (name) => page.evaluate((n) => {
  const tr = [...document.querySelectorAll("#jobs-table tbody tr")].find((r) => r.dataset.job === n);
  return tr ? [tr.dataset.status, tr.dataset.verdict] : null;
}, name);

try {
  if (scenario === "live") {
    // args: job name, file whose creation lets the job end
    const [job, go] = args;
    await page.goto(base + "/runs/" + "live", { waitUntil: "domcontentloaded" });
    out.running_after_ms = await until(async () => (await rowStatus(job) || [])[0] === "RUNNING");
    fs.writeFileSync(go, "go\n");
    const t0 = Date.now();
    out.pass_after_ms = await until(async () => (await rowStatus(job) || [])[1] === "pass", 30000);
    out.measured_from_go_ms = out.pass_after_ms < 0 ? -1 : Date.now() - t0;
    out.reloads = await page.evaluate(() => performance.getEntriesByType("navigation").length);
  } else if (scenario === "failed") {
    const [run, job] = args;
    await page.goto(base + "/runs/" + run, { waitUntil: "domcontentloaded" });
    await until(() => page.$("#jobs-table"));
    await until(() => page.evaluate((n) => {
      const f = [...document.querySelectorAll(".failure")].find((x) => x.dataset.job === n);
      return f && !f.querySelector(".tail").textContent.startsWith("…");
    }, job));
    out.failure = await page.evaluate((n) => {
      const f = [...document.querySelectorAll(".failure")].find((x) => x.dataset.job === n);
      if (!f) return null;
      return { culprit: (f.querySelector(".culprit") || {}).textContent || null, tail: f.querySelector(".tail").textContent,
               mismatches: [...f.querySelectorAll("li")].map((li) => li.textContent) };
    }, job);
    // open the job's page from its link
    await Promise.all([page.waitForNavigation(), page.evaluate((n) => {
      const f = [...document.querySelectorAll(".failure")].find((x) => x.dataset.job === n);
      f.querySelector("h3 a").click();
    }, job)]);
    await until(async () => (await page.$eval("#log", (e) => e.textContent)).length > 0);
    out.job_page = { title: await page.title(), log: await page.$eval("#log", (e) => e.textContent),
                     url: page.url() };
  } else if (scenario === "filter") {
    const [run] = args;
    await page.goto(base + "/runs/" + run, { waitUntil: "domcontentloaded" });
    await until(() => page.$("#verdict-filter"));
    out.before = await page.$$eval("#jobs-table tbody tr", (rs) => rs.length);
    await page.select("#verdict-filter", "fail");
    await until(async () => (await page.$$eval("#jobs-table tbody tr", (rs) => rs.length)) < out.before);
    out.after = await page.$$eval("#jobs-table tbody tr", (rs) => rs.map((r) => r.dataset.verdict));
    await page.type("#filter", "fl_2");
    await sleep(200);
    out.text_filtered = await page.$$eval("#jobs-table tbody tr", (rs) => rs.map((r) => r.dataset.job));
  } else if (scenario === "graph") {
    const [run] = args;
    await page.goto(base + "/runs/" + run, { waitUntil: "domcontentloaded" });
    await until(() => page.evaluate(() => { const g = document.querySelector("#needs-graph"); return g && g.complete && g.naturalWidth > 0; }));
    // The image as the page loaded it, read as a document to see its boxes and arrows.
    const graph = await page.evaluate(async () => {
      const g = document.querySelector("#needs-graph");
      const text = await (await fetch(g.src, { credentials: "same-origin" })).text();
      const doc = new DOMParser().parseFromString(text, "image/svg+xml");
      return { shown: g.naturalWidth > 0,
               boxes: [...doc.querySelectorAll("g.suite")].map((b) => ({ suite: b.getAttribute("data-suite"), text: b.textContent })),
               arrows: doc.querySelectorAll("[marker-end]").length };
    });
    out.graph_shown = graph.shown;
    out.boxes = graph.boxes;
    out.arrows = graph.arrows;
    out.skipped = await page.$$eval(".failure .skipped", (ss) => ss.map((s) => s.textContent));
  } else if (scenario === "kill") {
    const [run] = args;
    await page.goto(base + "/runs/" + run, { waitUntil: "domcontentloaded" });
    await until(() => page.$("#jobs-table"));
    out.button = (await page.$("#kill")) !== null;
    if (out.button) {
      // Clicked inside the page, in one step: a live update may redraw the button between
      // finding it and clicking it from outside (puppeteer's "Node is detached").
      await until(() => page.evaluate(() => {
        const b = document.querySelector("#kill");
        if (!b) return false;
        b.click();
        return true;
      }));
      out.cancelled_after_ms = await until(() => page.$$eval("#jobs-table tbody tr",
        (rs) => rs.length > 0 && rs.every((r) => r.dataset.status === "CANCELLED")), 30000);
      out.statuses = await page.$$eval("#jobs-table tbody tr", (rs) => rs.map((r) => r.dataset.status));
      out.dialogs = dialogs;
    }
  } else if (scenario === "xss") {
    const [run, job] = args;
    for (const url of ["/", "/runs/" + run, "/runs/" + run + "/jobs/" + encodeURIComponent(job)]) {
      await page.goto(base + url, { waitUntil: "domcontentloaded" });
      await until(() => page.evaluate(() => !document.querySelector("#app > p.muted")));
      await sleep(500);
      const seen = await page.evaluate(() => ({
        title: document.title, pwned: window.__pwned === undefined ? null : window.__pwned,
        scripts: document.scripts.length, imgs: document.images.length,
        svgs_outside_timeline: [...document.querySelectorAll("svg")].filter((s) => !s.classList.contains("timeline")).length,
        iframes: document.querySelectorAll("iframe").length,
        text_has_payload: document.body.textContent.includes("<img src=x"),
      }));
      out[url] = seen;
    }
  } else if (scenario === "metrics") {
    const [run, job] = args;
    await page.goto(base + "/runs/" + run, { waitUntil: "domcontentloaded" });
    await until(() => page.evaluate(() => document.querySelector(".metric") && !document.querySelector(".loading")));
    out.run_charts = await page.$$eval(".metric", (ms) => ms.map((m) => [m.dataset.metric,
      [...m.querySelectorAll("figure")].map((f) => [f.dataset.job, f.querySelector("polyline") ? f.querySelector("polyline").getAttribute("points").split(" ").length : 0])]));
    out.run_notes = await page.$$eval(".metric figure .no-series", (ns) => ns.map((n) => [n.closest("figure").dataset.job, n.textContent]));
    await page.goto(base + "/runs/" + run + "/jobs/" + encodeURIComponent(job), { waitUntil: "domcontentloaded" });
    await until(() => page.evaluate(() => document.querySelector("figure[data-metric]") && !document.querySelector(".loading")));
    out.job_charts = await page.$$eval("figure[data-metric]", (fs) => fs.map((f) => [f.dataset.metric, f.querySelector("figcaption").textContent]));
    out.job_points = await page.$$eval("figure[data-metric]", (fs) => fs.map((f) => [f.dataset.metric, f.querySelector("polyline") ? f.querySelector("polyline").getAttribute("points").split(" ").length : 0]));
    out.job_notes = await page.$$eval("figure[data-metric] .no-series", (ns) => ns.map((n) => n.textContent));
  } else if (scenario === "big") {
    const [run] = args;
    const t0 = Date.now();
    await page.goto(base + "/runs/" + run, { waitUntil: "domcontentloaded" });
    out.render_ms = await until(() => page.evaluate(() => document.querySelectorAll("#jobs-table tbody tr").length > 0), 30000);
    out.total_ms = Date.now() - t0;
    out.rows = await page.$$eval("#jobs-table tbody tr", (rs) => rs.length);
  } else {
    throw new Error("unknown scenario " + scenario);
  }
} catch (e) {
  out.error = String(e && e.stack || e);
}
out.page_errors = errors;
if (process.env.SHOT && (out.error || process.env.SHOT_ALWAYS)) {
  try { await page.screenshot({ path: process.env.SHOT, fullPage: true }); out.screenshot = process.env.SHOT; } catch (e) { /* none */ }
}
await browser.close();
console.log(JSON.stringify(out));
