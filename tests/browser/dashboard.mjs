// Drives the relay's dashboard in real headless Chromium, as a lead would.
// Run by the end-to-end test (tests/tests/e2e), which starts a relay and
// nodes and passes what this script needs in the environment:
//   RELAY_URL, LEAD_TOKEN, AGENT_TOKEN (a plain agent: must be turned away),
//   TICKETS_BIN, NODE_HOME (an agent's node that can create and sync),
//   EXPECT_RED, EXPECT_TOTAL (counts the board must show), SEARCH (a subject
//   word that matches exactly one ticket), SCREENSHOT (PNG path).
// Exits non-zero with one line saying what failed.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";

const env = (k) => { const v = process.env[k]; if (!v) { console.error(`missing ${k}`); process.exit(2); } return v; };
const url = env("RELAY_URL"), lead = env("LEAD_TOKEN"), agent = env("AGENT_TOKEN");
const bin = env("TICKETS_BIN"), home = env("NODE_HOME");
const expectRed = Number(env("EXPECT_RED")), expectTotal = Number(env("EXPECT_TOTAL"));
const search = env("SEARCH"), shot = env("SCREENSHOT");

function fail(msg) { console.error("dashboard test failed: " + msg); process.exitCode = 1; throw new Error(msg); }

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(10000);
  await page.goto(url + "/");
  await page.waitForSelector("#signin:not([hidden])");

  // A plain agent is turned away; the token never appears in the URL.
  await page.fill("#token", agent);
  await page.click("#signin button[type=submit]");
  await page.waitForFunction(() => document.querySelector("#signin-error").textContent.includes("leads"));
  if (page.url().includes(agent) || page.url().includes(lead)) fail("a token appeared in the URL");

  await page.fill("#token", lead);
  await page.click("#signin button[type=submit]");
  await page.waitForSelector("#board:not([hidden])");
  await page.waitForFunction((n) => document.querySelectorAll("#rows tr").length === n, expectTotal)
    .catch(() => fail(`expected ${expectTotal} rows`));
  if (page.url().includes(lead)) fail("the lead token appeared in the URL");

  // Colours: the counts and the badges agree with the relay.
  const red = Number(await page.textContent("#n-red"));
  if (red !== expectRed) fail(`expected ${expectRed} red, the board shows ${red}`);
  const badgeColours = await page.$$eval("#rows .badge", (bs) => bs.map((b) => b.dataset.color));
  if (badgeColours.filter((c) => c === "red").length !== expectRed) fail(`badges: ${badgeColours}`);

  // Filter by red.
  await page.click('.counts button[data-sla="red"]');
  await page.waitForFunction((n) => {
    const rows = [...document.querySelectorAll("#rows tr")];
    return rows.length === n && rows.every((r) => r.dataset.color === "red");
  }, expectRed).catch(() => fail("the red filter did not show exactly the red tickets"));

  // Search by subject.
  await page.selectOption("#f-sla", "");
  await page.fill("#f-search", search);
  await page.waitForFunction((w) => {
    const rows = [...document.querySelectorAll("#rows tr")];
    return rows.length === 1 && rows[0].textContent.toLowerCase().includes(w.toLowerCase());
  }, search).catch(() => fail(`search '${search}' did not narrow to one ticket`));

  // Sorting by a column header marks it for assistive technology.
  await page.fill("#f-search", "");
  await page.click('th[data-sort="subject"] button');
  await page.waitForSelector('th[data-sort="subject"][aria-sort="ascending"]');

  // A change made on a node appears without a reload.
  const subject = "Arrived live " + Date.now();
  execFileSync(bin, ["--home", home, "create", "--subject", subject, "--priority", "low", "--category", "hardware"]);
  execFileSync(bin, ["--home", home, "sync"]);
  await page.waitForFunction((s) => document.querySelector("#rows").textContent.includes(s), subject, { timeout: 15000 })
    .catch(() => fail("a ticket created on a node did not appear without reload"));

  await page.screenshot({ path: shot, fullPage: true });
  const phone = await browser.newPage({ viewport: { width: 390, height: 800 } });
  await phone.goto(url + "/");
  await phone.fill("#token", lead);
  await phone.click("#signin button[type=submit]");
  await phone.waitForSelector("#rows tr");
  await phone.screenshot({ path: shot.replace(/\.png$/, "-phone.png"), fullPage: true });
  console.log("dashboard test passed");
} finally {
  await browser.close();
}
