// The app's Inbox view in real headless Chromium, driven only by roles and
// accessible names. Run by tests/tests/browser/test_inbox.rs, which starts a
// relay with a Chatwoot inbox, an agent's node and `tickets app --no-open`
// on it, and passes:
//   APP_URL (the printed URL, with its secret), WEBHOOK_URL (the inbox's),
//   FIXTURES (tests/fixtures/chatwoot), TICKETS_BIN, AGENT_HOME,
//   ARTIFACTS (the folder for screenshots).
// The script posts the fixtures to the webhook while the page is open: the
// conversation must appear without a reload. Exits non-zero with one line
// saying what failed.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { env, fail, expect, launch, watchErrors, noHorizontalScroll, axe } from "./lib.mjs";

const appUrl = env("APP_URL"), webhook = env("WEBHOOK_URL"), fixtures = env("FIXTURES");
const bin = env("TICKETS_BIN"), agentHome = env("AGENT_HOME"), artifacts = env("ARTIFACTS");
const origin = new URL(appUrl).origin;
const CONVERSATION = "chatwoot:support:10";

const cliJson = (...args) => JSON.parse(execFileSync(bin, ["--home", agentHome, ...args, "--json"], { encoding: "utf8" }));

async function post(fixture) {
  const r = await fetch(webhook, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: readFileSync(join(fixtures, fixture)),
  });
  if (r.status !== 200) fail(`the webhook answered ${r.status} to ${fixture}: ${await r.text()}`);
}

/// Polls `check` (returning a value or null) until it gives a value.
async function poll(what, check, ms = 30000) {
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

const browser = await launch();
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  watchErrors(page, "the agent's app");
  page.on("dialog", (d) => fail(`a dialog opened (${d.message()}): conversation text ran as script`));
  await page.goto(appUrl);
  await expect(page.getByRole("status").filter({ hasText: "Synced" }).waitFor({ timeout: 30000 }), "the header never said Synced");

  // ---- the Inbox, empty, then live ----------------------------------------
  const inboxLink = page.getByRole("link", { name: "Inbox", exact: true });
  await expect(inboxLink.waitFor(), "no Inbox link in the navigation");
  await inboxLink.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "Inbox", level: 1 }).waitFor(), "the Inbox link did not open the Inbox");
  await expect(page.getByText("No conversations on this device yet").waitFor(), "an empty inbox says nothing");
  const loads = [];
  page.on("load", () => loads.push(page.url()));

  await post("conversation_created.json");
  const item = page.getByRole("listitem").filter({ has: page.getByRole("heading", { name: /jane/ }) });
  await expect(item.waitFor({ timeout: 30000 }), "the conversation posted to the relay did not appear in the open Inbox");
  await post("message_created.html.json");
  await expect(item.getByText("also the box was", { exact: false }).first().waitFor({ timeout: 30000 }),
    "a new message did not reach the open Inbox");
  if (loads.length) fail(`the page reloaded to show the conversation (${loads.join(", ")})`);
  const text = await item.textContent();
  for (const want of ["jane", "<script>alert(1)</script> also the box was <i>wet</i>", "customer waiting"]) {
    if (!text.includes(want)) fail(`the conversation does not show '${want}': ${text}`);
  }
  if (await page.evaluate(() => document.querySelector("#inbox-list script, #inbox-list i") !== null)) {
    fail("markup in a message became elements in the Inbox");
  }
  // The whole thread, on demand.
  if (await item.getByText("My order #1042 never arrived").isVisible()) fail("the whole thread shows before it is asked for");
  await item.getByText(/^Show the whole conversation \(2 messages\)$/).click();
  await expect(item.getByText("My order #1042 never arrived").waitFor(), "the Inbox does not show the whole thread");
  const channel = cliJson("inbox")[0].channel;
  if (channel && !text.includes(channel)) fail(`the conversation does not show its channel ${channel}: ${text}`);
  await axe(page, "the Inbox view");
  await page.screenshot({ path: `${artifacts}/app-inbox.png`, fullPage: true });

  // ---- Create ticket: the form, pre-filled --------------------------------
  const create = item.getByRole("button", { name: "Create ticket" });
  await create.focus();
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "New ticket", level: 1 }).waitFor(), "Create ticket did not open the form");
  await expect(page.getByText(`From conversation ${CONVERSATION}`).waitFor(), "the form does not say which conversation");
  const subject = await poll("the subject to be prefilled", () => page.getByRole("textbox", { name: "Subject" }).inputValue());
  const description = await page.getByRole("textbox", { name: "Description" }).inputValue();
  if (!description.includes("jane") || !description.includes("also the box was")) {
    fail(`the description is not the conversation's prefill: ${description}`);
  }
  await page.getByRole("combobox", { name: "Category" }).selectOption("billing");
  await page.getByRole("button", { name: "Create", exact: true }).click();
  await expect(page.getByRole("heading", { name: subject, level: 1 }).waitFor(), "Create did not open the new ticket");
  const tickets = cliJson("list");
  if (tickets.length !== 1) fail(`\`tickets list --json\` shows ${tickets.length} tickets, not 1`);
  if (tickets[0].conversation_id !== CONVERSATION) fail(`the ticket links '${tickets[0].conversation_id}', not ${CONVERSATION}`);
  if (!tickets[0].conversation_id.startsWith("chatwoot:")) fail("the ticket does not link a chatwoot: conversation");

  // ---- back in the Inbox: a link to the ticket -----------------------------
  await page.getByRole("link", { name: "Inbox", exact: true }).click();
  const link = item.getByRole("link", { name: `Open ticket ${tickets[0].id.slice(0, 8)}` });
  await expect(link.waitFor(), "the conversation does not link to its ticket");
  if (await item.getByRole("button", { name: "Create ticket" }).count()) fail("a conversation with a ticket still offers Create ticket");
  await link.click();
  await expect(page.getByRole("heading", { name: subject, level: 1 }).waitFor(), "the Inbox's link did not open the ticket");

  // ---- 390 px ---------------------------------------------------------------
  // The printed URL works once: the phone-sized browser gets this one's
  // session (its page cookie and localStorage) instead.
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, storageState: await ctx.storageState() });
  const p2 = await phone.newPage();
  p2.setDefaultTimeout(10000);
  watchErrors(p2, "the app at 390 px");
  await p2.goto(new URL(appUrl).origin + "/");
  await p2.getByRole("link", { name: "Inbox", exact: true }).click();
  await expect(p2.getByRole("link", { name: /^Open ticket / }).waitFor(), "the Inbox at 390 px shows no conversation");
  await noHorizontalScroll(p2, "the Inbox at 390 px");
  await axe(p2, "the Inbox at 390 px");
  console.log("inbox.mjs: all checks passed");
} finally {
  await browser.close();
}
