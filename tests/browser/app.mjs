// Drives the node's app (`tickets app`) in real headless Chromium, only by
// roles and accessible names (SPEC §8). Run by
// tests/tests/browser/test_app.rs, which starts a relay, a plain agent's and
// a lead's nodes with `tickets app --no-open` on each, and passes:
//   APP_URL, LEAD_APP_URL (the URLs the apps printed, with their secrets),
//   TICKETS_BIN, AGENT_HOME, LEAD_HOME (the nodes, for CLI checks),
//   HTML_SUBJECT (a ticket on the agent's node whose subject is markup),
//   OFFLINE_SUBJECT (the subject to create while the relay is down),
//   ARTIFACTS (the folder for screenshots).
// To stop or start the relay it prints `@relay stop` / `@relay start` and
// waits for `ok` on stdin. Exits non-zero with one line saying what failed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import http from "node:http";
import readline from "node:readline";
import { env, fail, expect, launch, watchErrors, noHorizontalScroll, axe } from "./lib.mjs";

const appUrl = env("APP_URL"), leadUrl = env("LEAD_APP_URL"), bin = env("TICKETS_BIN");
const agentHome = env("AGENT_HOME"), leadHome = env("LEAD_HOME");
const htmlSubject = env("HTML_SUBJECT"), offlineSubject = env("OFFLINE_SUBJECT"), artifacts = env("ARTIFACTS");
const origin = new URL(appUrl).origin;
const shot = (name) => `${artifacts}/${name}`;

// ---- the harness: relay control over stdin/stdout ------------------------
const lines = [];
let waiting = null;
const harness = readline.createInterface({ input: process.stdin });
harness.on("line", (l) => {
  if (waiting) {
    const w = waiting;
    waiting = null;
    w(l);
  } else lines.push(l);
});
async function relay(what) {
  console.log(`@relay ${what}`);
  const answer = lines.length ? lines.shift() : await new Promise((r) => { waiting = r; });
  if (answer.trim() !== "ok") fail(`the harness answered '${answer}' to 'relay ${what}'`);
}

const cli = (home, ...args) => execFileSync(bin, ["--home", home, ...args], { encoding: "utf8" });
const cliJson = (home, ...args) => JSON.parse(cli(home, ...args, "--json"));

/// Polls `check` (returning a value or null) until it gives a value.
async function poll(what, check, ms = 20000) {
  const deadline = Date.now() + ms;
  for (;;) {
    let v = null;
    try {
      v = await check();
    } catch {
      v = null;
    }
    if (v) return v;
    if (Date.now() > deadline) fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/// A raw HTTP GET, so that the Host header can be anything.
function rawGet(path, headers) {
  const u = new URL(origin);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: "GET", headers }, (res) => {
      let body = "";
      res.on("data", (d) => { body += d; });
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

/// The text of the element that describes `locator` (aria-describedby).
const description = (locator) => locator.evaluate((el) => (el.getAttribute("aria-describedby") || "")
  .split(/\s+/).map((id) => document.getElementById(id)).filter(Boolean).map((d) => d.textContent).join(" ").trim());

const browser = await launch();
try {
  // ---- the session and the Host check ----------------------------------
  const noSession = await fetch(`${origin}/v1/tickets`);
  if (noSession.status !== 401) fail(`GET /v1/tickets without the session answered ${noSession.status}, not 401`);
  const noSessionBody = await noSession.json().catch(() => ({}));
  if (!noSessionBody.error || !noSessionBody.code) fail("the 401 is not a JSON {error, code}");
  const pageNoSession = await fetch(`${origin}/`);
  if (pageNoSession.status !== 401) fail(`GET / without the session answered ${pageNoSession.status}, not 401`);

  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  watchErrors(page, "the agent's app");
  await page.goto(appUrl);
  if (page.url().includes("session=")) fail(`the secret stayed in the address bar: ${page.url()}`);
  // The session is a token of its own in localStorage (kept per origin:
  // host and port), sent as a header; the one cookie opens no API, since
  // a browser sends it to every port of 127.0.0.1.
  const port = new URL(origin).port;
  const token = await page.evaluate(() => localStorage.getItem("tickets-session"));
  if (!token || token === new URL(appUrl).searchParams.get("session")) fail("opening the printed URL stored no session token of its own");
  const cookieName = `tickets_page_${port}`;
  const cookie = (await ctx.cookies()).find((c) => c.name === cookieName);
  if (!cookie) fail(`opening the printed URL set no ${cookieName} cookie`);
  if (!cookie.httpOnly || cookie.sameSite !== "Strict") fail("the page cookie is not HttpOnly and SameSite=Strict");
  const cookieOnly = await rawGet("/v1/tickets", { Cookie: `${cookieName}=${cookie.value}` });
  if (cookieOnly.status !== 401) fail(`the page cookie alone answered ${cookieOnly.status}, not 401`);
  const twice = await rawGet(new URL(appUrl).pathname + new URL(appUrl).search, {});
  if (twice.status !== 401) fail(`the printed URL worked a second time (${twice.status})`);
  const foreign = await rawGet("/v1/tickets", { Host: `rebound.example:${port}`, Authorization: `Bearer ${token}` });
  if (foreign.status !== 403) fail(`a request with a foreign Host answered ${foreign.status}, not 403`);
  // From the page itself: the token works; without it, the cookie alone does not.
  const fromPage = await page.evaluate(async () => (await fetch("/v1/tickets?limit=1", { headers: { Authorization: "Bearer " + localStorage.getItem("tickets-session") } })).status);
  if (fromPage !== 200) fail(`the page's own fetch answered ${fromPage}`);
  const bare = await page.evaluate(async () => (await fetch("/v1/tickets?limit=1")).status);
  if (bare !== 401) fail(`the page's fetch without the token answered ${bare}, not 401`);

  // ---- the list ----------------------------------------------------------
  await expect(page.getByRole("table").waitFor(), "the list has no table");
  for (const name of ["Subject", "Priority", "Status", "Assignee", "Created", "SLA"]) {
    await expect(page.getByRole("columnheader", { name }).waitFor(), `no column header ${name}`);
  }
  await expect(page.getByRole("link", { name: htmlSubject, exact: true }).waitFor(), "a subject with markup did not show as text");
  if (await page.evaluate(() => window.pwned === 1 || document.querySelector("main img") !== null)) fail("markup in a subject ran as HTML");
  const status = page.getByRole("status");
  await expect(status.filter({ hasText: "Synced" }).waitFor({ timeout: 30000 }), "the header never said Synced");
  await axe(page, "the app's list");
  await page.screenshot({ path: shot("app-list.png"), fullPage: true });

  // ---- the form ----------------------------------------------------------
  await page.keyboard.press("c");
  await expect(page.getByRole("heading", { name: "New ticket", level: 1 }).waitFor(), "c did not open the new-ticket form");
  const subject = page.getByRole("textbox", { name: "Subject" });
  const desc = page.getByRole("textbox", { name: "Description" });
  await desc.fill("The tray is stuck.\nSecond line.");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  if ((await subject.getAttribute("aria-invalid")) !== "true") fail("an empty subject was not marked invalid");
  if (!(await description(subject)).includes("subject")) fail("the empty subject's error is not beside the field");
  if ((await desc.inputValue()) !== "The tray is stuck.\nSecond line.") fail("a refused form lost what was typed");
  const formSubject = `Made in the form ${Date.now()}`;
  await subject.fill(formSubject);
  await page.getByRole("combobox", { name: "Priority" }).selectOption("high");
  await page.getByRole("combobox", { name: "Category" }).selectOption("network");
  await page.getByRole("combobox", { name: "Assignee" }).selectOption("ana");
  await axe(page, "the new-ticket form");
  await page.screenshot({ path: shot("app-form.png"), fullPage: true });
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("heading", { name: formSubject, level: 1 }).waitFor(), "Create did not open the new ticket");
  const id = decodeURIComponent(page.url().split("#/tickets/")[1] || "");
  const listed = cliJson(agentHome, "list").find((t) => t.subject === formSubject);
  if (!listed) fail("`tickets list --json` does not show the ticket made in the form");
  if (listed.priority !== "high" || listed.category !== "network" || listed.assignee !== "ana") {
    fail(`the CLI shows the form's ticket as ${listed.priority}/${listed.category}/${listed.assignee}`);
  }

  // ---- from a conversation: prefilled form; an existing ticket is shown ----
  const dir = mkdtempSync(join(tmpdir(), "tickets-app-test-"));
  const convId = `wa-${Date.now()}`;
  const convFile = join(dir, "conversation.json");
  writeFileSync(convFile, JSON.stringify({
    id: convId, channel: "whatsapp", customer: { name: "Maria Lopez" },
    messages: [{ from: "Maria Lopez", role: "customer", text: "My router blinks red", at: new Date().toISOString() }],
  }));
  const badFile = join(dir, "not-json.json");
  writeFileSync(badFile, "{ this is not json");
  const chooseFile = async (path) => {
    const [chooser] = await Promise.all([page.waitForEvent("filechooser"),
      page.getByRole("button", { name: "From conversation" }).click()]);
    await chooser.setFiles(path);
  };
  const before = cliJson(agentHome, "list").length;
  await chooseFile(badFile);
  await expect(page.getByRole("alert").filter({ hasText: "not valid JSON" }).waitFor(), "a file that is not JSON got no clear message");
  if (cliJson(agentHome, "list").length !== before) fail("a bad conversation file created a ticket");
  await chooseFile(convFile);
  await expect(poll("the form to be prefilled from the conversation", async () =>
    (await page.getByRole("textbox", { name: "Description" }).inputValue()).includes("My router blinks red")),
  "the form was not prefilled from the conversation");
  const convSubject = await page.getByRole("textbox", { name: "Subject" }).inputValue();
  if (!convSubject) fail("the conversation gave no subject");
  await page.getByRole("combobox", { name: "Category" }).selectOption("network");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("heading", { name: convSubject, level: 1 }).waitFor(), "the conversation's ticket did not open");
  const convTicketId = await poll("the conversation's ticket page", () => decodeURIComponent(page.url().split("#/tickets/")[1] || ""));
  const convTicket = cliJson(agentHome, "show", convTicketId);
  // A conversation read from a file is linked in the file namespace.
  if (convTicket.conversation_id !== `file:${convId}`) fail(`the ticket links conversation ${convTicket.conversation_id}, not file:${convId}`);
  await page.goto(`${origin}/#/`);
  await chooseFile(convFile);
  await expect(poll("the existing ticket to be shown", () => page.url().includes(convTicketId)),
    "a conversation that already has a ticket did not show it");
  if (cliJson(agentHome, "list").length !== before + 1) fail("a second import of one conversation made another ticket");
  await page.goto(`${origin}/#/tickets/${encodeURIComponent(id)}`);
  await expect(page.getByRole("heading", { name: formSubject, level: 1 }).waitFor(), "going back to the form's ticket failed");

  // ---- the detail view ---------------------------------------------------
  if (await page.getByRole("tab", { name: "Internal notes" }).count()) fail("a plain agent sees an Internal notes tab");
  for (const name of ["Comments", "Timeline"]) await expect(page.getByRole("tab", { name }).waitFor(), `no ${name} tab`);
  await page.getByRole("textbox", { name: "Add a comment" }).fill("Tray cleared, testing now");
  await page.getByRole("button", { name: "Comment", exact: true }).click();
  await expect(page.getByRole("tabpanel", { name: "Comments" }).getByText("Tray cleared, testing now").waitFor(), "the comment did not show");
  await page.getByRole("combobox", { name: "Status" }).selectOption("in-progress");
  await poll("`tickets show` to see the comment and the status", () => {
    const t = cliJson(agentHome, "show", id);
    return t.status === "in-progress" && t.comments.some((c) => c.body === "Tray cleared, testing now") ? t : null;
  });
  // The description and the assignee, edited in place.
  const detailDesc = page.getByRole("textbox", { name: "Description" });
  await detailDesc.fill("The tray is stuck.\nSecond line.\nThird line, added later.");
  await page.getByRole("button", { name: "Save description" }).click();
  await page.getByRole("combobox", { name: "Assignee" }).selectOption("lea");
  await poll("`tickets show` to see the description and the assignee", () => {
    const t = cliJson(agentHome, "show", id);
    return t.description.endsWith("Third line, added later.") && t.assignee === "lea" ? t : null;
  });
  await page.getByRole("tab", { name: "Timeline" }).click();
  await expect(page.getByRole("tabpanel", { name: "Timeline" }).getByText("In progress").first().waitFor(), "the timeline does not show the status change");
  await axe(page, "the detail view");
  await page.screenshot({ path: shot("app-detail.png"), fullPage: true });
  await page.getByRole("tab", { name: "Comments" }).click();

  // ---- another node's edit appears live, and what is typed stays ---------
  const draft = page.getByRole("textbox", { name: "Add a comment" });
  await draft.fill("half-written reply");
  await poll("the lead's node to have the ticket", () => {
    cli(leadHome, "sync");
    return cliJson(leadHome, "show", id);
  });
  cli(leadHome, "comment", id, "Seen by the lead");
  cli(leadHome, "sync");
  await expect(page.getByRole("tabpanel", { name: "Comments" }).getByText("Seen by the lead").waitFor({ timeout: 15000 }),
    "the lead's synced comment did not appear on the open page");
  if ((await draft.inputValue()) !== "half-written reply") fail("a live update lost what was being typed");
  if (!(await draft.evaluate((el) => el === document.activeElement))) fail("a live update moved the focus");
  await draft.fill("");

  // ---- the lead: notes, export ------------------------------------------
  const leadCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const lead = await leadCtx.newPage();
  lead.setDefaultTimeout(10000);
  watchErrors(lead, "the lead's app");
  await lead.goto(`${leadUrl.split("#")[0]}`);
  await lead.getByRole("table").waitFor();
  await lead.goto(`${new URL(leadUrl).origin}/#/tickets/${encodeURIComponent(id)}`);
  await expect(lead.getByRole("tab", { name: "Internal notes" }).waitFor(), "a lead sees no Internal notes tab");
  await lead.getByRole("tab", { name: "Internal notes" }).click();
  await lead.getByRole("textbox", { name: "Add an internal note" }).fill("Customer is a VIP");
  await lead.getByRole("button", { name: "Add note" }).click();
  await expect(lead.getByRole("tabpanel", { name: "Internal notes" }).getByText("Customer is a VIP").waitFor(), "the lead's note did not show");
  await lead.getByRole("button", { name: "Export" }).click();
  const dialog = lead.getByRole("dialog", { name: "Export" });
  await expect(dialog.waitFor(), "Export opened no dialog");
  for (const name of ["From", "To"]) await expect(dialog.getByLabel(name).waitFor(), `the Export dialog has no ${name}`);
  for (const name of ["Status", "Category", "Format"]) await expect(dialog.getByRole("combobox", { name }).waitFor(), `the Export dialog has no ${name}`);
  await dialog.getByRole("combobox", { name: "Format" }).selectOption("ndjson");
  await lead.screenshot({ path: shot("app-export.png") });
  const [download] = await Promise.all([lead.waitForEvent("download"), dialog.getByRole("button", { name: "Download" }).click()]);
  if (!readFileSync(await download.path(), "utf8").includes(formSubject)) fail("the export does not hold the form's ticket");

  // ---- offline and back ----------------------------------------------
  await relay("stop");
  await expect(status.filter({ hasText: "Offline" }).waitFor({ timeout: 30000 }), "the header did not say Offline with the relay down");
  await lead.getByRole("status").filter({ hasText: "Offline" }).waitFor({ timeout: 30000 });
  await lead.getByRole("button", { name: "Export" }).click();
  await expect(dialog.getByText("not available offline").waitFor(), "offline, the Export dialog does not say why it cannot export");
  if (await dialog.getByRole("button", { name: "Download" }).isEnabled()) fail("offline, Download is still offered");
  await dialog.getByRole("button", { name: "Close" }).click();

  // While both are offline the lead closes the ticket and the agent then
  // resolves it: once synced, the close stands and the agent is told.
  cli(leadHome, "status", id, "closed");
  await page.getByRole("combobox", { name: "Status" }).selectOption("resolved");
  await poll("the offline status change to be saved", () => cliJson(agentHome, "show", id).status === "resolved");

  await page.getByRole("button", { name: "New ticket" }).click();
  await page.getByRole("textbox", { name: "Subject" }).fill(offlineSubject);
  await page.getByRole("combobox", { name: "Category" }).selectOption("hardware");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("heading", { name: offlineSubject, level: 1 }).waitFor(), "creating a ticket offline failed");
  if (!cliJson(agentHome, "list").some((t) => t.subject === offlineSubject)) fail("the offline ticket is not on the node");
  await expect(status.filter({ hasText: "saved on this device" }).waitFor(), "offline, the header does not count the changes saved on this device");

  await relay("start");
  await page.getByRole("button", { name: "Sync now" }).click();
  await expect(status.filter({ hasText: "Synced" }).waitFor({ timeout: 30000 }), "with the relay back, the header did not say Synced");

  // The agent's resolve came after the lead's close: ignored, and said so.
  await page.goto(`${origin}/#/tickets/${encodeURIComponent(id)}`);
  await poll("the lead's close to reach the relay", () => { cli(leadHome, "sync"); return cliJson(leadHome, "show", id).status === "closed"; });
  await page.getByRole("button", { name: "Sync now" }).click();
  await expect(page.getByText("Your change of status to “Resolved” was ignored").waitFor({ timeout: 20000 }),
    "the agent was not told that their status change was ignored");
  const statusBox = page.getByRole("combobox", { name: "Status" });
  if ((await statusBox.inputValue()) !== "closed" || (await statusBox.isEnabled())) fail("a closed ticket's Status control offers a way out");
  if ((await statusBox.locator("option").count()) !== 1) fail("a closed ticket's Status offers more than closed");
  await page.getByRole("tab", { name: "Timeline" }).click();
  await expect(page.getByRole("tabpanel", { name: "Timeline" }).getByText("ignored", { exact: true }).waitFor(), "the timeline does not mark the ignored edit");

  // ---- phone width -------------------------------------------------------
  const phone = await ctx.newPage();
  await phone.setViewportSize({ width: 390, height: 800 });
  watchErrors(phone, "the app at 390 px");
  await phone.goto(`${origin}/`);
  await expect(phone.getByRole("link", { name: formSubject }).waitFor(), "the list did not load at 390 px");
  await noHorizontalScroll(phone, "the list at 390 px");
  await phone.screenshot({ path: shot("app-phone.png"), fullPage: true });
  await phone.goto(`${origin}/#/tickets/${encodeURIComponent(id)}`);
  await expect(phone.getByRole("heading", { name: formSubject, level: 1 }).waitFor(), "the detail view did not load at 390 px");
  await noHorizontalScroll(phone, "the detail view at 390 px");
  await phone.screenshot({ path: shot("app-phone-detail.png"), fullPage: true });
  await phone.goto(`${origin}/#/new`);
  await expect(phone.getByRole("heading", { name: "New ticket", level: 1 }).waitFor(), "the form did not load at 390 px");
  await noHorizontalScroll(phone, "the form at 390 px");
  await phone.screenshot({ path: shot("app-phone-form.png"), fullPage: true });
  console.log("app test passed");
} finally {
  await browser.close();
  harness.close();
  process.stdin.destroy();
}
