# chat_web_test.py: drives the chat UI in headless Chromium (Debian's /usr/bin/chromium through the Python
# playwright package, whose own browser download is never needed) against a running server: send a message, watch
# the reply stream in, regenerate it, edit a message, use the controls and shortcuts, and save screenshots. Run by
# tests/http/e2e_chat_web_browser.sh with the project venv's interpreter:
#   python chat_web_test.py <base-url> <screenshot-dir>
# $CHROMIUM picks the browser (default /usr/bin/chromium). Prints "ok   <step>" or "FAIL <step>: <why>" per step,
# then "N passed, M failed"; exits 1 when any step failed.
import os
import shutil
import sys
import tempfile

from playwright.sync_api import sync_playwright

base_url, shot_dir = sys.argv[1], sys.argv[2]
passed = failed = 0


def step(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"ok   {name}", flush=True)
    except Exception as e:  # an AssertionError or a playwright timeout: the step failed, the next one still runs
        failed += 1
        msg = str(e) or type(e).__name__
        print(f"FAIL {name}: {msg}", flush=True)


def check(cond, msg="check failed"):
    if not cond:
        raise AssertionError(msg)


def check_equal(actual, expected, msg=None):
    if actual != expected:
        raise AssertionError(f"{msg + ': ' if msg else ''}expected {expected!r}, got {actual!r}")


user_data_dir = tempfile.mkdtemp(prefix="nanochat-chromium-")
try:
    with sync_playwright() as p:
        # A persistent context is how playwright takes a fresh --user-data-dir.
        browser = p.chromium.launch_persistent_context(
            user_data_dir,
            executable_path=os.environ.get("CHROMIUM") or "/usr/bin/chromium",
            headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
            viewport={"width": 1100, "height": 760},
            device_scale_factor=1,
        )
        try:
            page = browser.new_page()
            console_errors = []
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(str(e)))
            sse = []  # every streamed response body, to check events arrived one by one
            page.on("response", lambda r: sse.append(r) if r.url.endswith("/chat/completions") else None)

            page.goto(base_url + "/")

            def page_loads():
                check_equal(page.title(), "NanoChat")
                page.wait_for_selector("#status-text:text('ready')", timeout=10000)
                check_equal(page.locator(".message").count(), 0)
                check_equal(page.locator("#send").is_disabled(), True, "send is disabled while the input is empty")
            step("page loads with title and an empty conversation", page_loads)

            def sending_streams():
                page.fill("#input", "Hi there, llama?")
                check_equal(page.locator("#send").is_disabled(), False)
                page.keyboard.press("Enter")
                page.wait_for_selector(".message.user")
                # The mock answers one byte per 15 ms: the reply must show up partially before it is done.
                page.wait_for_selector(".message.assistant")
                partial = page.locator(".message.assistant .text").text_content()
                page.wait_for_selector(".message.assistant.done", timeout=15000)
                full = page.locator(".message.assistant .text").text_content()
                check(full.startswith("Hello \U0001F999 \u4F60\u597D! You said: Hi there, llama?"), f"reply: {full}")
                check("\uFFFD" not in full, "no replacement characters")
                check(len(partial) < len(full), f"streamed (first seen {len(partial)} of {len(full)} chars)")
                check_equal(page.locator(".message.user .text").text_content(), "Hi there, llama?")
            step("sending a message streams a reply", sending_streams)
            page.screenshot(path=os.path.join(shot_dir, "chat_web_reply.png"))

            def regenerates():
                before = page.locator(".message.assistant .text").text_content()
                page.locator(".message.assistant").click()
                page.wait_for_selector(".message.assistant.done", timeout=15000)
                check_equal(page.locator(".message.assistant").count(), 1)
                check_equal(page.locator(".message.user").count(), 1)
                after = page.locator(".message.assistant .text").text_content()
                # temperature 0.8 -> the mock's reply carries a seed-dependent suffix: a new request, a new seed.
                check("You said: Hi there, llama?" in after, f"reply: {after}")
                check(after != before, "a regenerated reply comes from a new request")
            step("clicking the reply regenerates it", regenerates)

            def controls():
                page.fill("#input", "/temperature 0")
                page.keyboard.press("Enter")
                page.wait_for_selector(".message.console:has-text('temperature set to 0')")
                check_equal(page.locator("#temperature").input_value(), "0")
                page.fill("#input", "/topk 7")
                page.keyboard.press("Enter")
                check_equal(page.locator("#topk").input_value(), "7")
                page.fill("#input", "Second question")
                page.keyboard.press("Enter")
                page.wait_for_function("() => document.querySelectorAll('.message.assistant.done').length === 2")
                last = page.locator(".message.assistant .text").nth(1).text_content()
                check_equal(last, "Hello \U0001F999 \u4F60\u597D! You said: Second question",
                            "temperature 0 -> no seed suffix")
            step("temperature control and slash commands", controls)

            def edit_user_message():
                page.locator(".message.user").nth(1).click()
                check_equal(page.locator("#input").input_value(), "Second question")
                check_equal(page.locator(".message.user").count(), 1)
                check_equal(page.locator(".message.assistant").count(), 1)
                page.fill("#input", "Edited question")
                page.keyboard.press("Enter")
                page.wait_for_function("() => document.querySelectorAll('.message.assistant.done').length === 2")
                last = page.locator(".message.assistant .text").nth(1).text_content()
                check_equal(last, "Hello \U0001F999 \u4F60\u597D! You said: Edited question")
            step("clicking a user message puts it back in the input for editing", edit_user_message)

            def shift_enter():
                page.fill("#input", "line one")
                page.keyboard.press("Shift+Enter")
                page.keyboard.type("line two")
                check_equal(page.locator("#input").input_value(), "line one\nline two")
                check_equal(page.locator(".message.user").count(), 2)
                page.fill("#input", "")
            step("Shift+Enter inserts a newline", shift_enter)
            page.screenshot(path=os.path.join(shot_dir, "chat_web_conversation.png"))

            def esc_stops():
                page.fill("#input", "forever and ever")
                page.keyboard.press("Enter")
                page.wait_for_function("""() => {
                    const r = document.querySelectorAll(".message.assistant");
                    return r.length === 3 && r[2].textContent.length > 20;
                }""")
                page.keyboard.press("Escape")
                page.wait_for_selector("body.idle")
                page.wait_for_function("""async () => {
                    const h = await (await fetch("/health")).json();
                    return h.available_workers === h.num_gpus;
                }""", timeout=5000)
            step("Esc stops a long reply and the server frees its worker", esc_stops)

            def new_conversation():
                page.keyboard.press("Control+Shift+N")
                check_equal(page.locator(".message").count(), 0)
                page.wait_for_selector(".empty")
            step("Ctrl+Shift+N starts a new conversation", new_conversation)

            def no_console_errors():
                check_equal(console_errors, [])
            step("no errors in the page console", no_console_errors)
            page.close()
        finally:
            browser.close()
finally:
    shutil.rmtree(user_data_dir, ignore_errors=True)
print(f"{passed} passed, {failed} failed", flush=True)
sys.exit(1 if failed else 0)
