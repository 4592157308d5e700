// Helpers shared by the browser scripts: launching Debian's Chromium,
// failing with one clear line, the axe-core scan and the 390 px check.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

export const env = (k) => {
  const v = process.env[k];
  if (!v) {
    console.error(`missing ${k} in the environment`);
    process.exit(2);
  }
  return v;
};

export function fail(msg) {
  console.error("browser test failed: " + msg);
  process.exitCode = 1;
  throw new Error(msg);
}

/// Awaits `promise`; on failure, fails with `msg` (and the cause).
export async function expect(promise, msg) {
  try {
    return await promise;
  } catch (e) {
    fail(`${msg} (${String(e && e.message).split("\n")[0]})`);
  }
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/// Fails the test on any uncaught script error or CSP violation in a page.
export function watchErrors(page, name) {
  page.on("pageerror", (e) => fail(`${name}: script error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|SyntaxError|TypeError|ReferenceError/.test(m.text())) {
      fail(`${name}: console error: ${m.text()}`);
    }
  });
}

/// No horizontal scrolling at the page's width.
export async function noHorizontalScroll(page, what) {
  const { scroll, client } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  if (scroll > client) {
    const wide = await page.evaluate((w) => [...document.querySelectorAll("body *")]
      .filter((el) => el.getBoundingClientRect().right > w + 1 && el.getClientRects().length)
      .slice(-3).map((el) => `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""} “${(el.textContent || "").trim().slice(0, 40)}”`), client);
    fail(`${what}: the page scrolls sideways (${scroll} px wide in a ${client} px window; past the edge: ${wide.join(", ")})`);
  }
}

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/// Runs axe-core in the page; fails on any serious or critical violation.
export async function axe(page, what) {
  // Evaluated over the DevTools protocol, so the page's CSP (which
  // rightly refuses inline scripts) stays on.
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
  });
  if (found.length) fail(`axe found on ${what}:\n  ${found.join("\n  ")}`);
}
