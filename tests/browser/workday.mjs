// An agent's and a lead's day in the app (`tickets app`), in real headless
// Chromium, only by roles and accessible names. Run by
// tests/tests/browser/test_workday.rs, which starts a relay, an agent's
// node (ana, 30 tickets, one of them assigned to her by the lead) and a
// lead's node (lea), `tickets app --no-open` on each, and passes:
//   APP_URL, LEAD_APP_URL, TICKETS_BIN, AGENT_HOME, LEAD_HOME,
//   FRESH_ID (the ticket the lead assigned to ana), ARTIFACTS.
// To stop or start the relay it prints `@relay stop` / `@relay start` and
// waits for `ok` on stdin. Exits non-zero with one line saying what failed.
import { execFileSync } from "node:child_process";
import readline from "node:readline";
import { env, fail, expect, launch, watchErrors, noHorizontalScroll, axe } from "./lib.mjs";

const appUrl = env("APP_URL"), leadUrl = env("LEAD_APP_URL"), bin = env("TICKETS_BIN");
const agentHome = env("AGENT_HOME"), leadHome = env("LEAD_HOME"), freshId = env("FRESH_ID");
const artifacts = env("ARTIFACTS");
const origin = new URL(appUrl).origin;
const shot = (name) => `${artifacts}/${name}`;

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
const byId = (id) => cliJson(agentHome, "show", id);
const subjectOf = (i) => `Ticket number ${String(i).padStart(2, "0")} about the printer`;

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

/// Both widths of one screen: 1280×800 and 390 px (no sideways scroll).
async function shots(page, name) {
  await page.screenshot({ path: shot(`workday-${name}-1280.png`) });
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 800 });
  await noHorizontalScroll(page, `${name} at 390 px`);
  await page.screenshot({ path: shot(`workday-${name}-390.png`) });
  await page.setViewportSize(size);
}

const browser = await launch();
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(10000);
  watchErrors(page, "the agent's app");
  await page.goto(appUrl);
  const table = page.getByRole("table");
  await expect(table.waitFor(), "the list has no table");
  await expect(page.getByRole("link", { name: subjectOf(0) }).waitFor(), "the list does not show the agent's tickets");
  const status = page.getByRole("status");
  await expect(status.filter({ hasText: "Synced" }).waitFor({ timeout: 30000 }), "the header never said Synced");

  // ---- density: one line per ticket, 18 rows on a 1280×800 screen -------
  await page.screenshot({ path: shot("workday-list-1280.png") });
  const rows = table.getByRole("row");
  const geometry = await rows.evaluateAll((trs) => trs.slice(1).map((tr) => {
    const r = tr.getBoundingClientRect();
    const line = parseFloat(getComputedStyle(tr.querySelector("a")).lineHeight) || 20;
    const wrapped = [...tr.querySelectorAll("time, .badge")].filter((el) => el.getBoundingClientRect().height > line * 1.6);
    return { top: r.top, bottom: r.bottom, height: r.height, line, wrapped: wrapped.map((el) => el.textContent) };
  }));
  const visibleRows = geometry.filter((g) => g.bottom <= 800).length;
  if (visibleRows < 18) fail(`only ${visibleRows} rows are visible at 1280×800 (at least 18 wanted)`);
  for (const g of geometry) {
    if (g.height > g.line * 2) fail(`a row is ${g.height} px high: more than one line at 1280 px`);
    if (g.wrapped.length) fail(`a date or badge wraps at 1280 px: ${g.wrapped.join(", ")}`);
  }
  const colours = await table.evaluate((t) => new Set([...t.querySelectorAll("td.wide .prio")].map((p) => getComputedStyle(p).color)).size);
  if (colours < 3) fail(`priorities are not coloured (${colours} colours among four priorities)`);

  // The selected view's label stays readable on hover (white on dark).
  const all = page.getByRole("group", { name: "Views" }).getByRole("button", { name: "All", exact: true });
  await all.hover();
  const hovered = await all.evaluate((b) => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]);
  if (hovered[0] !== "rgb(255, 255, 255)" || hovered[1] === "rgb(246, 248, 250)") {
    fail(`the selected view's label on hover is ${hovered[0]} on ${hovered[1]}, not white on dark`);
  }
  await page.mouse.move(0, 0);

  // ---- "New for you": on the row, in the header and in the title ---------
  const freshRow = rows.filter({ has: page.getByRole("link", { name: "Assigned by the lead" }) });
  await expect(freshRow.getByText("New for you").waitFor(), "the ticket the lead assigned is not marked New for you");
  await expect(poll("the title to count new tickets", async () => (await page.title()) === "(1) Tickets"),
    "the page title does not count the tickets new for the agent");
  await expect(page.getByRole("link", { name: "1 new for you" }).waitFor(), "the header does not count the tickets new for the agent");
  await axe(page, "the dense list");
  const phone = await ctx.newPage();
  watchErrors(phone, "the app at 390 px");
  await phone.setViewportSize({ width: 390, height: 800 });
  await phone.goto(`${origin}/`);
  await expect(phone.getByRole("link", { name: subjectOf(0) }).waitFor(), "the list did not load at 390 px");
  await phone.screenshot({ path: shot("workday-list-390.png") });
  const firstTop = await phone.getByRole("table").getByRole("row").nth(1).evaluate((tr) => tr.getBoundingClientRect().top);
  if (firstTop > 400) fail(`at 390 px the first ticket starts ${firstTop} px from the top (400 at most)`);
  await noHorizontalScroll(phone, "the list at 390 px");
  await phone.close();

  // Opening it is what clears it.
  await freshRow.getByRole("link", { name: "Assigned by the lead" }).click();
  await expect(page.getByRole("heading", { name: "Assigned by the lead", level: 1 }).waitFor(), "the fresh ticket did not open");
  await page.getByRole("link", { name: "← All tickets" }).click();
  await expect(poll("the title to drop the count", async () => (await page.title()) === "Tickets"),
    `opening the ticket did not clear New for you (the title reads ${JSON.stringify(await page.title())})`);
  await expect(poll("the row to drop New for you", async () => (await freshRow.getByText("New for you").count()) === 0),
    "an opened ticket is still New for you");

  // ---- the list's state lives in the address ----------------------------
  const filters = page.getByRole("search", { name: "Filter tickets" });
  await filters.getByRole("combobox", { name: "Priority" }).selectOption("urgent");
  await expect(poll("the address to carry the filter", () => page.url().includes("priority=urgent")), "the priority filter is not in the address");
  await page.getByRole("columnheader", { name: "Created" }).getByRole("button").click();
  await expect(poll("the address to carry the sort", () => page.url().includes("sort=-created")), "the sort is not in the address");
  await page.reload();
  await expect(poll("the filter to come back after a reload", async () =>
    (await filters.getByRole("combobox", { name: "Priority" }).inputValue()) === "urgent"), "a reload lost the filter");
  await expect(poll("the sort to come back after a reload", async () =>
    (await page.getByRole("columnheader", { name: "Created" }).getAttribute("aria-sort")) === "descending"), "a reload lost the sort");
  await expect(poll("only urgent tickets after a reload", async () => {
    // Seven of the thirty are urgent (every fourth), and one header row.
    return (await table.getByRole("row").count()) === 8;
  }), "after a reload the list is not filtered to urgent tickets");
  await page.goBack();
  await expect(poll("back to undo the sort", async () =>
    (await page.getByRole("columnheader", { name: "Created" }).getAttribute("aria-sort")) === "none"), "back did not restore the previous sort");
  if ((await filters.getByRole("combobox", { name: "Priority" }).inputValue()) !== "urgent") fail("back lost the filter it should keep");
  await page.goForward();
  await expect(poll("forward to redo the sort", async () =>
    (await page.getByRole("columnheader", { name: "Created" }).getAttribute("aria-sort")) === "descending"), "forward did not restore the sort");

  // Save view names the current one; it shows beside the fixed views.
  await page.getByRole("button", { name: "Save view" }).click();
  const viewDialog = page.getByRole("dialog", { name: "Save view" });
  await expect(viewDialog.waitFor(), "Save view opened no dialog");
  await viewDialog.getByRole("textbox", { name: "Name" }).fill("Urgent first");
  await axe(page, "the Save view dialog");
  await viewDialog.getByRole("button", { name: "Save", exact: true }).click();
  const views = page.getByRole("group", { name: "Views" });
  const saved = views.getByRole("button", { name: "Urgent first", exact: true });
  await expect(saved.waitFor(), "the saved view is not beside the fixed views");
  if ((await saved.getAttribute("aria-pressed")) !== "true") fail("the saved view is not marked as the current one");
  await views.getByRole("button", { name: "All", exact: true }).click();
  await expect(poll("All to clear the filter", async () => (await filters.getByRole("combobox", { name: "Priority" }).inputValue()) === ""), "All kept the filter");
  await saved.click();
  await expect(poll("the saved view to restore its filter", async () =>
    (await filters.getByRole("combobox", { name: "Priority" }).inputValue()) === "urgent"), "the saved view did not restore its filter");
  await axe(page, "the list with a saved view");
  await shots(page, "view");
  // The node holds it: a new page shows it too.
  await page.reload();
  await expect(saved.waitFor(), "the saved view is gone after a reload");
  await views.getByRole("button", { name: "Delete view Urgent first" }).click();
  await expect(saved.waitFor({ state: "detached" }), "Delete view did not remove the saved view");
  await views.getByRole("button", { name: "All", exact: true }).click();

  // ---- bulk edits ---------------------------------------------------------
  const ids = Object.fromEntries(cliJson(agentHome, "list").map((t) => [t.subject, t.id]));
  cli(agentHome, "status", ids[subjectOf(3)], "closed");
  await page.getByRole("columnheader", { name: "Subject" }).getByRole("button").click();
  await expect(poll("the list sorted by subject", async () => page.url().includes("sort=subject")), "sorting by subject failed");
  const box = (i) => page.getByRole("checkbox", { name: `Select ${subjectOf(i)}` });
  await expect(box(1).waitFor(), "a row has no checkbox named Select SUBJECT");
  if (await page.getByRole("toolbar", { name: "Bulk actions" }).isVisible()) fail("the Bulk actions toolbar shows with nothing selected");
  await box(1).check();
  await box(4).click({ modifiers: ["Shift"] });
  for (const i of [1, 2, 3, 4]) if (!(await box(i).isChecked())) fail(`a shift-click range did not select ${subjectOf(i)}`);
  if (await box(5).isChecked()) fail("a shift-click range selected past its end");
  // x toggles the focused row.
  await page.getByRole("link", { name: subjectOf(6) }).focus();
  await page.keyboard.press("x");
  if (!(await box(6).isChecked())) fail("x did not select the focused row");
  await page.keyboard.press("x");
  if (await box(6).isChecked()) fail("x did not unselect the focused row");
  const bar = page.getByRole("toolbar", { name: "Bulk actions" });
  await expect(bar.waitFor(), "with a selection there is no Bulk actions toolbar");
  for (const name of ["Assignee", "Priority", "Status", "Category"]) {
    await expect(bar.getByRole("combobox", { name }).waitFor(), `the Bulk actions toolbar has no ${name}`);
  }
  await bar.getByRole("combobox", { name: "Status" }).selectOption("in-progress");
  await bar.getByRole("combobox", { name: "Assignee" }).selectOption("lea");
  await axe(page, "the list with a bulk selection");
  await shots(page, "bulk");
  await bar.getByRole("button", { name: "Apply" }).click();
  await expect(page.getByText(/Changed 3 tickets; 1 refused/).waitFor(), "the bulk result does not count applied and refused tickets");
  await expect(page.getByRole("listitem").filter({ hasText: subjectOf(3) }).waitFor(), "the refused ticket is not listed by its subject");
  for (const i of [1, 2, 4]) {
    const t = byId(ids[subjectOf(i)]);
    if (t.status !== "in-progress" || t.assignee !== "lea") fail(`${subjectOf(i)} is ${t.status}/${t.assignee} after the bulk edit`);
  }
  if (byId(ids[subjectOf(3)]).status !== "closed") fail("the bulk edit reopened a closed ticket");
  const row2 = rows.filter({ has: page.getByRole("link", { name: subjectOf(2) }) });
  await expect(row2.getByRole("cell", { name: "lea" }).waitFor(), "an applied bulk edit did not update its row");
  // Select all selects the page.
  await page.getByRole("checkbox", { name: "Select all" }).check();
  if (!(await box(10).isChecked())) fail("Select all did not select every row");
  await bar.getByRole("button", { name: "Clear selection" }).click();
  if (await bar.isVisible()) fail("the toolbar stays with nothing selected");

  // ---- closing asks; a closed ticket's controls are disabled -------------
  await page.getByRole("link", { name: subjectOf(5) }).click();
  await expect(page.getByRole("heading", { name: subjectOf(5), level: 1 }).waitFor(), "the ticket did not open");
  const desc = page.getByRole("textbox", { name: "Description" });
  await page.getByRole("combobox", { name: "Status" }).selectOption("closed");
  const closeDialog = page.getByRole("dialog", { name: "Close ticket?" });
  await expect(closeDialog.waitFor(), "setting Closed did not ask for confirmation");
  await expect(closeDialog.getByText("Closed is final").waitFor(), "the confirmation does not say closed is final");
  await closeDialog.getByRole("button", { name: "Cancel" }).click();
  if ((await page.getByRole("combobox", { name: "Status" }).inputValue()) === "closed") fail("Cancel left Closed chosen");
  if (byId(ids[subjectOf(5)]).status === "closed") fail("Cancel closed the ticket");
  await page.getByRole("combobox", { name: "Status" }).selectOption("closed");
  await closeDialog.getByRole("button", { name: "Close ticket" }).click();
  await poll("the ticket to be closed", () => byId(ids[subjectOf(5)]).status === "closed");
  for (const name of ["Status", "Priority", "Assignee", "Category"]) {
    await expect(poll(`${name} to be disabled`, () => page.getByRole("combobox", { name }).isDisabled()), `a closed ticket's ${name} is enabled`);
  }
  if (!(await desc.isDisabled())) fail("a closed ticket's Description is enabled");
  await expect(page.getByText("This ticket is closed").first().waitFor(), "a closed ticket does not say why its controls are disabled");
  await axe(page, "a closed ticket");
  await shots(page, "closed");
  // Text typed when the ticket closed elsewhere stays in the field.
  await page.getByRole("link", { name: "← All tickets" }).click();
  await page.getByRole("link", { name: subjectOf(7) }).click();
  await expect(page.getByRole("heading", { name: subjectOf(7), level: 1 }).waitFor(), "the ticket did not open");
  await desc.fill("A description typed while someone closed the ticket");
  cli(agentHome, "status", ids[subjectOf(7)], "closed");
  await expect(poll("the live close", () => desc.isDisabled()), "a ticket closed elsewhere left its Description enabled");
  if ((await desc.inputValue()) !== "A description typed while someone closed the ticket") fail("closing lost the typed description");

  // ---- the timeline in words ----------------------------------------------
  await page.goto(`${origin}/#/tickets/${encodeURIComponent(ids[subjectOf(9)])}`);
  await expect(page.getByRole("heading", { name: subjectOf(9), level: 1 }).waitFor(), "the ticket did not open");
  await page.getByRole("combobox", { name: "Status" }).selectOption("in-progress");
  await poll("the status change", () => byId(ids[subjectOf(9)]).status === "in-progress");
  await desc.fill("A long description that the timeline must not dump");
  await page.getByRole("button", { name: "Save description" }).click();
  await poll("the description change", () => byId(ids[subjectOf(9)]).description.startsWith("A long"));
  await page.getByRole("tab", { name: "Timeline" }).click();
  const timeline = page.getByRole("tabpanel", { name: "Timeline" });
  await expect(timeline.getByText("changed status from Open to In progress").waitFor(), "the timeline does not say the status change in words");
  await expect(timeline.getByText("edited the description").waitFor(), "the timeline does not say the description was edited");
  if (await timeline.getByText("must not dump").count()) fail("the timeline dumps the description's text");
  if (await timeline.getByText("in-progress").count()) fail("the timeline shows the raw value in-progress");

  // ---- offline: a calm header, details on demand ---------------------------
  await page.goto(`${origin}/`);
  // Everything edited so far reaches the relay first: the app's background
  // sync may not have pushed the last edits yet on a loaded machine, and
  // they would be counted beside the three below.
  cli(agentHome, "sync");
  await relay("stop");
  await expect(status.filter({ hasText: "Offline" }).waitFor({ timeout: 30000 }), "the header did not say Offline");
  // Ticket 10 is high and 11 urgent: two edits of one, one of the other.
  cli(agentHome, "edit", ids[subjectOf(10)], "--priority", "urgent");
  cli(agentHome, "edit", ids[subjectOf(10)], "--priority", "low");
  cli(agentHome, "edit", ids[subjectOf(11)], "--priority", "low");
  // Three edits of two tickets: the header counts edits, not tickets.
  const docs = cliJson(agentHome, "status").pending;
  await expect(status.filter({ hasText: "Offline · 3 changes saved on this device" }).waitFor({ timeout: 15000 }),
    `the offline header does not say "Offline · 3 changes saved on this device" (the node counts ${docs} documents): ${await status.textContent()}`);
  const height = await status.evaluate((el) => el.getBoundingClientRect().height / (parseFloat(getComputedStyle(el).lineHeight) || 20));
  if (height > 1.5) fail(`the offline header wraps over ${height.toFixed(1)} lines`);
  const colour = await status.evaluate((el) => getComputedStyle(el).color);
  if (colour === "rgb(194, 31, 43)") fail("the offline header is red");
  const details = page.getByText("Details", { exact: true });
  await expect(details.waitFor(), "offline, there are no details on demand");
  await details.click();
  await expect(page.getByText("The relay cannot be reached now").waitFor(), "the offline details do not say what happened");
  await axe(page, "the offline header");
  await shots(page, "offline");
  await relay("start");
  await page.getByRole("button", { name: "Sync now" }).click();
  await expect(status.filter({ hasText: "Synced" }).waitFor({ timeout: 30000 }), "with the relay back, the header did not say Synced");

  // ---- the lead: the Export dialog takes the list's filters ----------------
  const leadCtx = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  const lead = await leadCtx.newPage();
  lead.setDefaultTimeout(10000);
  watchErrors(lead, "the lead's app");
  await lead.goto(leadUrl);
  await lead.getByRole("table").waitFor();
  await lead.goto(`${new URL(leadUrl).origin}/#/?status=open&category=network`);
  await lead.getByRole("button", { name: "Export" }).click();
  const dialog = lead.getByRole("dialog", { name: "Export" });
  await expect(dialog.waitFor(), "Export opened no dialog");
  if ((await dialog.getByRole("combobox", { name: "Status" }).inputValue()) !== "open") fail("the Export dialog did not take the list's Status");
  if ((await dialog.getByRole("combobox", { name: "Category" }).inputValue()) !== "network") fail("the Export dialog did not take the list's Category");
  await expect(dialog.getByText("the dates the tickets were created").waitFor(), "the Export dialog does not say which date From and To apply to");
  await axe(lead, "the Export dialog");
  console.log("workday test passed");
} finally {
  await browser.close();
  harness.close();
  process.stdin.destroy();
}
