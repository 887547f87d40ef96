// chat_web.test.mjs: drives the chat UI in headless Chromium (Debian's /usr/bin/chromium through playwright-core)
// against a running server: send a message, watch the reply stream in, regenerate it, edit a message, use the
// controls and shortcuts, and save screenshots. Run by tests/e2e_chat_web_browser.sh:
//   node chat_web.test.mjs <base-url> <screenshot-dir>
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";

const [baseUrl, shotDir] = process.argv.slice(2);
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "nanochat-chromium-"));
// A persistent context is how playwright takes a fresh --user-data-dir.
const browser = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1100, height: 760 },
  deviceScaleFactor: 1,
});
let passed = 0, failed = 0;
async function step(name, fn) {
  try { await fn(); passed++; console.log(`ok   ${name}`); }
  catch (e) { failed++; console.log(`FAIL ${name}: ${e.message}`); }
}

try {
  const page = await browser.newPage();
  const consoleErrors = [];
  page.on("console", m => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", e => consoleErrors.push(String(e)));
  const sse = [];  // every streamed response body, to check events arrived one by one
  page.on("response", r => { if (r.url().endsWith("/chat/completions")) sse.push(r); });

  await page.goto(baseUrl + "/");
  await step("page loads with title and an empty conversation", async () => {
    assert.equal(await page.title(), "NanoChat");
    await page.waitForSelector("#status-text:text('ready')", { timeout: 10000 });
    assert.equal(await page.locator(".message").count(), 0);
    assert.equal(await page.locator("#send").isDisabled(), true, "send is disabled while the input is empty");
  });

  await step("sending a message streams a reply", async () => {
    await page.fill("#input", "Hi there, llama?");
    assert.equal(await page.locator("#send").isDisabled(), false);
    await page.keyboard.press("Enter");
    await page.waitForSelector(".message.user");
    // The mock answers one byte per 15 ms: the reply must show up partially before it is done.
    await page.waitForSelector(".message.assistant");
    const partial = await page.locator(".message.assistant .text").textContent();
    await page.waitForSelector(".message.assistant.done", { timeout: 15000 });
    const full = await page.locator(".message.assistant .text").textContent();
    assert.ok(full.startsWith("Hello \u{1F999} \u4F60\u597D! You said: Hi there, llama?"), `reply: ${full}`);
    assert.ok(!full.includes("\uFFFD"), "no replacement characters");
    assert.ok(partial.length < full.length, `streamed (first seen ${partial.length} of ${full.length} chars)`);
    assert.equal(await page.locator(".message.user .text").textContent(), "Hi there, llama?");
  });
  await page.screenshot({ path: path.join(shotDir, "chat_web_reply.png") });

  await step("clicking the reply regenerates it", async () => {
    const before = await page.locator(".message.assistant .text").textContent();
    await page.locator(".message.assistant").click();
    await page.waitForSelector(".message.assistant.done", { timeout: 15000 });
    assert.equal(await page.locator(".message.assistant").count(), 1);
    assert.equal(await page.locator(".message.user").count(), 1);
    const after = await page.locator(".message.assistant .text").textContent();
    // temperature 0.8 -> the mock's reply carries a seed-dependent suffix: a new request, a new seed.
    assert.ok(after.includes("You said: Hi there, llama?"));
    assert.notEqual(after, before, "a regenerated reply comes from a new request");
  });

  await step("temperature control and slash commands", async () => {
    await page.fill("#input", "/temperature 0");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".message.console:has-text('temperature set to 0')");
    assert.equal(await page.locator("#temperature").inputValue(), "0");
    await page.fill("#input", "/topk 7");
    await page.keyboard.press("Enter");
    assert.equal(await page.locator("#topk").inputValue(), "7");
    await page.fill("#input", "Second question");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelectorAll(".message.assistant.done").length === 2);
    const last = await page.locator(".message.assistant .text").nth(1).textContent();
    assert.equal(last, "Hello \u{1F999} \u4F60\u597D! You said: Second question", "temperature 0 -> no seed suffix");
  });

  await step("clicking a user message puts it back in the input for editing", async () => {
    await page.locator(".message.user").nth(1).click();
    assert.equal(await page.locator("#input").inputValue(), "Second question");
    assert.equal(await page.locator(".message.user").count(), 1);
    assert.equal(await page.locator(".message.assistant").count(), 1);
    await page.fill("#input", "Edited question");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => document.querySelectorAll(".message.assistant.done").length === 2);
    const last = await page.locator(".message.assistant .text").nth(1).textContent();
    assert.equal(last, "Hello \u{1F999} \u4F60\u597D! You said: Edited question");
  });

  await step("Shift+Enter inserts a newline", async () => {
    await page.fill("#input", "line one");
    await page.keyboard.press("Shift+Enter");
    await page.keyboard.type("line two");
    assert.equal(await page.locator("#input").inputValue(), "line one\nline two");
    assert.equal(await page.locator(".message.user").count(), 2);
    await page.fill("#input", "");
  });
  await page.screenshot({ path: path.join(shotDir, "chat_web_conversation.png") });

  await step("Esc stops a long reply and the server frees its worker", async () => {
    await page.fill("#input", "forever and ever");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => {
      const r = document.querySelectorAll(".message.assistant");
      return r.length === 3 && r[2].textContent.length > 20;
    });
    await page.keyboard.press("Escape");
    await page.waitForSelector("body.idle");
    await page.waitForFunction(async () => {
      const h = await (await fetch("/health")).json();
      return h.available_workers === h.num_gpus;
    }, null, { timeout: 5000 });
  });

  await step("Ctrl+Shift+N starts a new conversation", async () => {
    await page.keyboard.press("Control+Shift+N");
    assert.equal(await page.locator(".message").count(), 0);
    await page.waitForSelector(".empty");
  });

  await step("no errors in the page console", async () => {
    assert.deepEqual(consoleErrors, []);
  });
  await page.close();
} finally {
  await browser.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
