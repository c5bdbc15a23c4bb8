#!/usr/bin/env python3
"""Opens an HTML report in headless Chromium (Debian's `chromium`) over the DevTools protocol and
says what a reader's browser saw, as one JSON object on stdout:

  requests   every URL the page asked for (the report's own file:// URL excepted)
  errors     console errors, uncaught exceptions and error log entries
  marks      for each chart (figure.chart), how many data marks (.mark) it holds
  clipped    under print emulation on A4 (180 mm of text width, 96 dpi), the charts whose box
             goes past the page's width, and whether the page scrolls sideways (overflow)
  pdf_bytes  the size of the PDF Chromium printed (A4)

and writes a full-page screenshot (PNG). The browser gets its own profile in a temporary
directory and is stopped at the end. Usage: report_browser.py --html FILE --screenshot FILE.PNG
"""
import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request

import websocket  # websocket-client, from PyPI

A4_TEXT_WIDTH_PX = 680  # 210 mm − 2 × 14 mm of margin, at 96 px per inch


class Page:
    def __init__(self, url):
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"]["value"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--html", required=True)
    parser.add_argument("--screenshot", required=True)
    args = parser.parse_args()
    page_url = "file://" + os.path.abspath(args.html)
    profile = tempfile.mkdtemp(prefix="relance-chromium-")
    browser = subprocess.Popen(
        ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--remote-debugging-port=0",
         f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in browser.stderr:
            found = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if found:
                port = int(found.group(1))
                break
        if port is None:
            raise RuntimeError("chromium did not start its DevTools endpoint")
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10))
        target = next(t for t in targets if t.get("type") == "page")
        page = Page(target["webSocketDebuggerUrl"])
        for domain in ("Page", "Network", "Runtime", "Log"):
            page.call(f"{domain}.enable")
        page.call("Emulation.setDeviceMetricsOverride", width=1000, height=1400, deviceScaleFactor=1, mobile=False)
        page.call("Page.navigate", url=page_url)
        page.wait_for("Page.loadEventFired")
        marks = page.evaluate("[...document.querySelectorAll('figure.chart')].map(f => f.querySelectorAll('.mark').length)")
        height = page.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                         clip={"x": 0, "y": 0, "width": 1000, "height": height, "scale": 1})
        with open(args.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        # Print emulation on A4's text width: no chart may go past it, nothing may scroll sideways.
        page.call("Emulation.setEmulatedMedia", media="print")
        page.call("Emulation.setDeviceMetricsOverride", width=A4_TEXT_WIDTH_PX, height=960, deviceScaleFactor=1, mobile=False)
        clipped = page.evaluate(
            "[...document.querySelectorAll('figure.chart svg')].map((s, i) => [i, s.getBoundingClientRect()])"
            f".filter(([i, r]) => r.left < -0.5 || r.right > {A4_TEXT_WIDTH_PX} + 0.5 || r.width < 1).map(([i]) => i)")
        overflow = page.evaluate(f"document.documentElement.scrollWidth > {A4_TEXT_WIDTH_PX} + 1")
        pdf = page.call("Page.printToPDF", paperWidth=8.27, paperHeight=11.69, preferCSSPageSize=True)
        requests, errors = [], []
        for e in page.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if url != page_url:
                    requests.append(url)
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in params.get("args", [])))
            elif method == "Runtime.exceptionThrown":
                errors.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                errors.append(params["entry"].get("text", ""))
        print(json.dumps({"requests": requests, "errors": errors, "marks": marks, "clipped": clipped, "overflow": overflow,
                          "pdf_bytes": len(base64.b64decode(pdf["data"]))}))
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
            browser.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
