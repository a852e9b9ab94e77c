#!/usr/bin/env python3
"""Browser checks of the web demo (Demo/web) as `martlet local`'s console serves it: headless Chromium,
driven by Playwright, loads the page, connects, submits jobs over the WebSocket API, uploads an input
through a presigned S3 POST, plays the WAV result, reads the live view and its metric charts (from the
console's /_martlet/metrics) and meets a refused key.

Usage: python scripts/lib/browser_suite.py --console URL --screenshot-dir DIR
Prints `ok - NAME` / `not ok - NAME: WHY` and `N passed, M failed`; exits 1 on any failure.
Uses the system Chromium (`chromium` on PATH): Playwright's own browsers are not installed.
"""
import argparse
import io
import json
import math
import os
import shutil
import struct
import sys
import urllib.parse
import urllib.request
import wave

from playwright.sync_api import expect, sync_playwright
from tap import report, summary

VIEWPORT = {"width": 1280, "height": 900}
JOB_TIMEOUT_MS = 60_000

# Records every `data-progress` value the page shows, per job, to check that progress was visible.
RECORD_PROGRESS = """
window.progressSeen = {};
new MutationObserver((mutations) => {
  for (const mutation of mutations) {
    const job = mutation.target.closest?.('[data-job-id]');
    if (!job || !mutation.target.matches('.progress')) continue;
    (window.progressSeen[job.dataset.jobId] ??= []).push(Number(mutation.target.dataset.progress));
  }
}).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-progress'] });
"""

FETCH_HEAD = """
async (url) => {
  const response = await fetch(url);
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, riff: String.fromCharCode(...bytes.slice(0, 4)),
           wave: String.fromCharCode(...bytes.slice(8, 12)), size: bytes.length };
}
"""


def tone_wav(seconds=0.25, rate=8000):
    """A short 440 Hz tone as WAV bytes: the input file to upload."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(rate)
        frames = (int(8000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate)))
        output.writeframes(b"".join(struct.pack("<h", frame) for frame in frames))
    return buffer.getvalue()


class DemoPage:
    """One browser page on the console, with what it sent over its WebSockets and its script errors."""

    def __init__(self, browser, console):
        self.context = browser.new_context(viewport=VIEWPORT)
        self.page = self.context.new_page()
        self.sent_frames = []
        self.script_errors = []
        self.requests = []
        self.page.on("websocket", lambda socket: socket.on("framesent", lambda payload: self.sent_frames.append(payload)))
        self.page.on("pageerror", lambda error: self.script_errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.add_init_script(RECORD_PROGRESS)
        self.page.goto(console)
        # The settings are filled once the page has read the console's configuration.
        self.page.wait_for_function("document.querySelector('#http-url').value !== ''", timeout=10_000)

    def job_ids(self):
        return self.page.eval_on_selector_all("#jobs [data-job-id]", "jobs => jobs.map(job => job.dataset.jobId)")

    def submit(self, prompt, seconds="1", extra="", model="demo"):
        """Fills the form, submits, and returns the new job's id and element."""
        page = self.page
        page.select_option("#model", model)
        page.fill("#prompt", prompt)
        page.fill("#seconds", seconds)
        page.fill("#seed", "7")
        page.fill("#extra-parameters", extra)
        before = self.job_ids()
        page.click("#submit")
        try:
            handle = page.wait_for_function(
                "before => [...document.querySelectorAll('#jobs [data-job-id]')].map(job => job.dataset.jobId).find(id => !before.includes(id))",
                arg=before,
                timeout=15_000,
            )
        except Exception:
            raise AssertionError(f"no job appeared after submit; the page says {self.error_text() or page.text_content('#submit-status')!r}") from None
        job_id = handle.json_value()
        return job_id, page.locator(f'#jobs [data-job-id="{job_id}"]')

    def error_text(self):
        return (self.page.text_content("#error") or "").strip()

    def close(self):
        self.context.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--console", required=True, help="the console's URL, such as http://127.0.0.1:3002")
    parser.add_argument("--screenshot-dir", required=True)
    args = parser.parse_args()
    console = args.console.rstrip("/")
    os.makedirs(args.screenshot_dir, exist_ok=True)
    try:
        with urllib.request.urlopen(f"{console}/_martlet/config", timeout=10) as response:
            config = json.load(response)
    except Exception as error:
        report("the console answers /_martlet/config", repr(error))
        summary()
        return 1
    chromium = shutil.which("chromium")
    if chromium is None:
        report("a Chromium to drive", "no `chromium` on PATH")
        summary()
        return 1

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"], headless=True)
        demo = DemoPage(browser, console)
        page = demo.page

        def check_connects():
            for selector, expected in (("#http-url", config["httpAPI"]), ("#ws-url", config["webSocket"]), ("#api-key", config["key"])):
                value = page.input_value(selector)
                assert value == expected, f"{selector} is {value!r}, expected {expected!r} from /_martlet/config"
            page.click("#connect")
            expect(page.locator("#connection-state")).to_have_text("connected", timeout=15_000)
            assert demo.error_text() == "", f"error shown: {demo.error_text()!r}"

        def check_demo_job():
            job_id, job = demo.submit("browser suite: a calm sea at dawn", seconds="1", extra='{"stepMilliseconds": 100}')
            expect(job).to_have_attribute("data-state", "SUCCEEDED", timeout=JOB_TIMEOUT_MS)
            progress = job.locator(".progress")
            expect(progress).to_have_attribute("data-progress", "100")
            expect(progress).to_have_attribute("aria-valuenow", "100")
            seen = page.evaluate("id => window.progressSeen[id] ?? []", job_id)
            assert any(0 < value < 100 for value in seen), f"no progress between 0 and 100 was shown: {seen}"
            assert seen == sorted(seen), f"progress went backwards: {seen}"
            audio = job.locator(".result audio")
            src = audio.get_attribute("src")
            assert src, "the result's <audio> has no src"
            head = page.evaluate(FETCH_HEAD, src)
            assert head["status"] == 200 and head["riff"] == "RIFF" and head["wave"] == "WAVE", f"fetching the result from the page: {head}"
            page.wait_for_function("audio => audio.readyState >= 1 && audio.duration > 0", arg=audio.element_handle(), timeout=10_000)
            duration = audio.evaluate("audio => audio.duration")
            assert 0.9 <= duration <= 1.1, f"the audio lasts {duration} s, expected about 1 s"
            link = job.locator(".result a.download")
            assert link.get_attribute("href") == src, "the download link is not the result URL"
            assert (link.get_attribute("download") or "").endswith(".wav"), f"download name {link.get_attribute('download')!r}"
            assert demo.error_text() == "", f"error shown: {demo.error_text()!r}"
            page.wait_for_function("document.querySelectorAll('#live-workers li').length > 0", timeout=10_000)
            path = os.path.join(args.screenshot_dir, "demo.png")
            page.screenshot(path=path, full_page=True)

        def check_upload():
            page.set_input_files("#input-file", files=[{"name": "tone.wav", "mimeType": "audio/wav", "buffer": tone_wav()}])
            try:
                with page.expect_response(lambda r: r.request.method == "POST" and urllib.parse.urlparse(r.url).path.endswith("/uploads")) as created:
                    _, job = demo.submit("browser suite: with an input", seconds="1")
                target = created.value.json()
                expect(job).to_have_attribute("data-state", "SUCCEEDED", timeout=JOB_TIMEOUT_MS)
                submits = [json.loads(frame) for frame in demo.sent_frames if '"submit"' in frame]
                assert submits and submits[-1].get("inputKey") == target["key"], f"the submit did not name the upload {target['key']!r}: {submits[-1:]}"
                assert demo.error_text() == "", f"error shown: {demo.error_text()!r}"
            finally:
                page.set_input_files("#input-file", files=[])

        def check_failure():
            message = "browser suite: a planned failure"
            _, job = demo.submit("browser suite: fails", seconds="1", extra=json.dumps({"failWith": message}))
            expect(job).to_have_attribute("data-state", "FAILED", timeout=JOB_TIMEOUT_MS)
            expect(job.locator(".job-message")).to_contain_text(message)
            expect(job.locator(".cancel")).to_be_hidden()

        def check_live_view():
            expect(page.locator("#live")).to_be_visible()
            page.wait_for_function(
                "[...document.querySelectorAll('#live-functions tr')].some(row => Number(row.cells[1]?.textContent) > 0)", timeout=10_000
            )
            workers = page.locator("#live-workers li").count()
            assert workers >= 1, "no worker shown"
            queues = page.locator("#live-queues li").count()
            assert queues >= 1, "no queue shown"

        def check_metrics():
            # Once jobs have run, the charts have points and the totals count the invocations (a Count metric's
            # `sum` per bucket); the section fits the page's width.
            ready = """() => {
              const section = document.querySelector('#live-metrics');
              const points = (id) => Number(document.querySelector(id)?.getAttribute('data-points'));
              const invocations = document.querySelector('#metrics-totals [data-total="invocations"]');
              return Boolean(section && !section.hidden && section.getClientRects().length)
                && points('#chart-invocations') > 0 && points('#chart-jobs') > 0
                && Number(invocations?.dataset.value) > 0 && Number(invocations.querySelector('dd').textContent.replace(/[^0-9.]/g, '')) > 0;
            }"""
            try:
                page.wait_for_function(ready, timeout=15_000)
            except Exception:
                seen = page.evaluate("""() => ({
                  hidden: document.querySelector('#live-metrics')?.hidden, status: document.querySelector('#metrics-status')?.textContent,
                  empty: !document.querySelector('#metrics-empty')?.hidden,
                  points: [...document.querySelectorAll('#live-metrics svg')].map(chart => `${chart.id}=${chart.getAttribute('data-points')}`),
                  totals: document.querySelector('#metrics-totals')?.innerText.replace(/\\s+/g, ' ') })""")
                raise AssertionError(f"no charted metrics within 15 s: {seen}") from None
            overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 0, f"the page is {overflow} px wider than the window"
            page.locator("#live-metrics").screenshot(path=os.path.join(args.screenshot_dir, "metrics.png"))

        def check_refused_key():
            refused = DemoPage(browser, console)
            try:
                refused.page.fill("#api-key", "wrong-key")
                refused.page.click("#connect")
                expect(refused.page.locator("#error")).to_contain_text("refused", timeout=15_000)
                expect(refused.page.locator("#connection-state")).to_have_text("disconnected")
                refused.page.screenshot(path=os.path.join(args.screenshot_dir, "refused.png"), full_page=True)
                demo.script_errors += refused.script_errors
                demo.requests += refused.requests
            finally:
                refused.close()

        def check_self_contained():
            allowed = {urllib.parse.urlparse(url).netloc for url in (console, config["httpAPI"], config["webSocket"], config["endpoint"])}
            outside = sorted({url for url in demo.requests if not url.startswith("data:") and urllib.parse.urlparse(url).netloc not in allowed})
            assert not outside, f"requests outside the stack: {outside[:5]}"
            assert not demo.script_errors, f"uncaught script errors: {demo.script_errors[:3]}"

        for name, body in [
            ("the page fills in the console's configuration and connects", check_connects),
            ("a demo job shows its progress up to 100, succeeds, and plays its WAV result", check_demo_job),
            ("an input file goes up through the presigned S3 POST and its key into the submit", check_upload),
            ("a job that fails shows FAILED and its message", check_failure),
            ("the live view shows functions with invocations, queues and workers", check_live_view),
            ("the metric charts show invocations and jobs, with an invocations total", check_metrics),
            ("a wrong key is refused with a clear message, and the page stays disconnected", check_refused_key),
            ("the page loads nothing from outside the stack and throws no script errors", check_self_contained),
        ]:
            try:
                body()
                report(name)
            except Exception as error:
                report(name, " ".join(str(error).split())[:500] or repr(error))
        demo.close()
        browser.close()

    return summary()


if __name__ == "__main__":
    sys.exit(main())
