// Drives the relay's dashboard (the shared UI, read-only) in real headless
// Chromium, as a lead would, only by roles and accessible names. Run by
// tests/tests/board/test_dashboard.rs, which starts a relay and a node and
// passes in the environment:
//   RELAY_URL, LEAD_TOKEN, AGENT_TOKEN (a plain agent: must be turned away),
//   TICKETS_BIN, NODE_HOME (an agent's node that can create and sync),
//   EXPECT_RED, EXPECT_TOTAL (counts the board must show), SEARCH (a subject
//   word that matches exactly one ticket), HTML_SUBJECT (a subject with
//   markup in it, which must show as text), SCREENSHOT (PNG path).
// Exits non-zero with one line saying what failed.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { env, fail, expect, launch, watchErrors, noHorizontalScroll, axe } from "./lib.mjs";

const url = env("RELAY_URL"), lead = env("LEAD_TOKEN"), agent = env("AGENT_TOKEN");
const bin = env("TICKETS_BIN"), home = env("NODE_HOME");
const expectRed = Number(env("EXPECT_RED")), expectTotal = Number(env("EXPECT_TOTAL"));
const search = env("SEARCH"), htmlSubject = env("HTML_SUBJECT"), shot = env("SCREENSHOT");

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  page.setDefaultTimeout(10000);
  watchErrors(page, "dashboard");
  await page.goto(url + "/");
  const token = page.getByLabel("Token");
  const signIn = page.getByRole("button", { name: "Sign in" });
  await expect(token.waitFor(), "no sign-in form with a Token field");

  // A plain agent is turned away; the token never appears in the URL.
  await token.fill(agent);
  await signIn.click();
  await expect(page.getByRole("alert").filter({ hasText: "leads" }).waitFor(), "a plain agent was not told the dashboard is for leads");
  if (page.url().includes(agent) || page.url().includes(lead)) fail("a token appeared in the URL");

  await token.fill(lead);
  await signIn.click();
  const table = page.getByRole("table");
  const rows = table.getByRole("row");
  // One header row, then one row per ticket.
  await expect(page.waitForFunction((n) => document.querySelectorAll("tbody tr[data-id]").length === n, expectTotal),
    `expected ${expectTotal} ticket rows`);
  if ((await rows.count()) !== expectTotal + 1) fail(`the table has ${await rows.count()} rows, expected ${expectTotal} and a header`);
  if (page.url().includes(lead)) fail("the lead token appeared in the URL");
  for (const name of ["Subject", "Priority", "Status", "Assignee", "Created", "SLA"]) {
    await expect(page.getByRole("columnheader", { name }).waitFor(), `no column header ${name}`);
  }
  // Read-only: no write controls.
  for (const name of ["New ticket", "From conversation", "Sync now"]) {
    if (await page.getByRole("button", { name }).isVisible()) fail(`the read-only dashboard shows ${name}`);
  }

  // Colours: the counts and the badges agree with the relay.
  const counts = page.getByRole("list", { name: "Tickets by SLA colour" });
  const redCount = await counts.getByRole("listitem").filter({ hasText: "red" }).textContent();
  if (!redCount.trim().startsWith(String(expectRed))) fail(`expected ${expectRed} red, the counts say '${redCount.trim()}'`);
  // A red badge names the clock that is overdue.
  const redCells = table.getByRole("cell").filter({ hasText: /^(First response|Resolution) .* overdue/ });
  if ((await redCells.count()) !== expectRed) fail(`expected ${expectRed} red badges, found ${await redCells.count()}`);

  // Markup in a subject is text: the link shows it, nothing ran.
  await expect(page.getByRole("link", { name: htmlSubject, exact: true }).waitFor(), "a subject with markup did not show as text");
  if (await page.evaluate(() => window.pwned === 1 || document.querySelector("tbody img") !== null)) fail("markup in a subject was run as HTML");

  // Filter by SLA colour.
  await page.getByRole("combobox", { name: "SLA" }).selectOption("red");
  await expect(page.waitForFunction((n) => {
    const r = [...document.querySelectorAll("tbody tr[data-id]")];
    return r.length === n && r.every((x) => x.dataset.color === "red");
  }, expectRed), "the SLA filter did not show exactly the red tickets");
  // The everyday views: yellow and red together; nobody's tickets.
  await page.getByRole("button", { name: "Approaching breach" }).click();
  await expect(page.waitForFunction((n) => {
    const r = [...document.querySelectorAll("tbody tr[data-id]")];
    return r.length === n && r.every((x) => x.dataset.color === "red" || x.dataset.color === "yellow");
  }, expectRed), "Approaching breach did not show exactly the yellow and red tickets");
  if ((await page.getByRole("button", { name: "Approaching breach" }).getAttribute("aria-pressed")) !== "true") {
    fail("the Approaching breach view is not marked as pressed");
  }
  await page.getByRole("button", { name: "Unassigned" }).click();
  await expect(page.waitForFunction((n) => document.querySelectorAll("tbody tr[data-id]").length === n, expectTotal),
    "Unassigned did not show the unassigned tickets (all of them here)");
  await page.getByRole("button", { name: "All", exact: true }).click();
  await expect(page.waitForFunction((n) => document.querySelectorAll("tbody tr[data-id]").length === n, expectTotal),
    "All did not bring every ticket back");

  // Search by subject.
  await page.getByRole("searchbox", { name: "Search" }).fill(search);
  await expect(page.waitForFunction((w) => {
    const r = [...document.querySelectorAll("tbody tr[data-id]")];
    return r.length === 1 && r[0].textContent.toLowerCase().includes(w.toLowerCase());
  }, search), `search '${search}' did not narrow to one ticket`);

  // `/` focuses the search box; sorting by a header marks it.
  await page.getByRole("searchbox", { name: "Search" }).fill("");
  await page.getByRole("heading", { name: "Tickets", level: 1 }).click();
  await page.keyboard.press("/");
  if (!(await page.getByRole("searchbox", { name: "Search" }).evaluate((el) => el === document.activeElement))) fail("/ did not focus the search box");
  await page.getByRole("button", { name: "Subject" }).click();
  await expect(page.waitForFunction(() => document.querySelector('th[data-sort="subject"]').getAttribute("aria-sort") === "ascending"),
    "clicking Subject did not sort ascending");
  await axe(page, "the dashboard's list");

  // j / k move through the list's links; Enter opens one; Back returns.
  const subjects = await page.$$eval("tbody tr[data-id] a", (as) => as.map((a) => a.textContent));
  await page.getByRole("heading", { name: "Tickets", level: 1 }).click();
  for (const key of ["j", "j", "k", "j"]) await page.keyboard.press(key);
  const focused = await page.evaluate(() => document.activeElement.textContent);
  if (focused !== subjects[1]) fail(`j j k j should reach the second ticket (${subjects[1]}), focus is on '${focused}'`);
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: subjects[1], level: 1 }).waitFor(), "Enter did not open the focused ticket");
  await page.goBack();
  await expect(page.getByRole("heading", { name: "Tickets", level: 1 }).waitFor(), "Back did not return to the list");
  await page.keyboard.press("?");
  await expect(page.getByRole("dialog", { name: "Keyboard shortcuts" }).waitFor(), "? did not list the shortcuts");
  await page.keyboard.press("Escape");

  // A change made on a node appears without a reload.
  const subject = "Arrived live " + Date.now();
  execFileSync(bin, ["--home", home, "create", "--subject", subject, "--priority", "low", "--category", "hardware"]);
  execFileSync(bin, ["--home", home, "sync"]);
  const live = page.getByRole("link", { name: subject });
  await expect(live.waitFor({ timeout: 15000 }), "a ticket created on a node did not appear without reload");
  await page.screenshot({ path: shot, fullPage: true });

  // The detail view: heading, SLA, tabs; notes are there for a lead.
  await live.click();
  await expect(page.getByRole("heading", { name: subject, level: 1 }).waitFor(), "the detail view has no heading with the subject");
  for (const name of ["Comments", "Internal notes", "Timeline"]) {
    await expect(page.getByRole("tab", { name }).waitFor(), `no ${name} tab for a lead`);
  }
  if (await page.getByRole("combobox", { name: "Status" }).isVisible()) fail("the read-only detail view offers a Status control");
  await page.getByRole("tab", { name: "Timeline" }).click();
  await expect(page.getByRole("tabpanel", { name: "Timeline" }).getByText("created the ticket").waitFor(), "the timeline does not show the creation");
  await axe(page, "the dashboard's detail view");
  await page.screenshot({ path: shot.replace(/\.png$/, "-detail.png"), fullPage: true });
  await page.goBack();
  await expect(page.getByRole("table").waitFor(), "Back did not return to the list");

  // Export: the dialog downloads the relay's CSV.
  await page.getByRole("button", { name: "Export" }).click();
  const dialog = page.getByRole("dialog", { name: "Export" });
  await expect(dialog.waitFor(), "Export opened no dialog");
  for (const name of ["From", "To"]) await expect(dialog.getByLabel(name).waitFor(), `the Export dialog has no ${name}`);
  for (const name of ["Status", "Category", "Format"]) await expect(dialog.getByRole("combobox", { name }).waitFor(), `the Export dialog has no ${name}`);
  await dialog.getByRole("combobox", { name: "Format" }).selectOption("csv");
  const [download] = await Promise.all([page.waitForEvent("download"), dialog.getByRole("button", { name: "Download" }).click()]);
  const csv = readFileSync(await download.path(), "utf8");
  if (!csv.includes(subject)) fail("the CSV export does not hold the ticket just created");
  await expect(dialog.waitFor({ state: "hidden" }), "the Export dialog stayed open after the download");

  // Phone width: no sideways scrolling.
  const phone = await browser.newPage({ viewport: { width: 390, height: 800 } });
  watchErrors(phone, "dashboard at 390 px");
  await phone.goto(url + "/");
  await phone.getByLabel("Token").fill(lead);
  await phone.getByRole("button", { name: "Sign in" }).click();
  await expect(phone.getByRole("link", { name: subject }).waitFor(), "the phone-width list did not load");
  await noHorizontalScroll(phone, "the dashboard at 390 px");
  await phone.screenshot({ path: shot.replace(/\.png$/, "-phone.png"), fullPage: true });
  console.log("dashboard test passed");
} finally {
  await browser.close();
}
