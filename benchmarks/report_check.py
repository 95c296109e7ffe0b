"""Open unseg's HTML reports in a real browser: headless Chromium loads the report of a folder
run, of a benchmark and of a slide run from disk, fails on any console error, uncaught script
error, failed file load or network request, and saves screenshots of what a user sees.

    python benchmarks/report_check.py --out /tmp/report-check [--data ../shared/data]

Needs Debian's ``chromium`` (``apt-get install -y chromium``) and the real data of
``../shared/data`` (WSSS4LUAD validation patches with class names, the CMU SVS slide). Runs, in
``OUT``: ``unseg segment`` (F-SEG, embedded backbone, k=8) with ``--report``, ``unseg
benchmark`` of three methods with ``--report``, ``unseg slide segment`` with ``--names`` and
``--report``; then loads each ``report/index.html`` over ``file://`` (the browser is driven
through the DevTools protocol on a pipe: no port, no network) and writes ``OUT/shots/*.png``.
Exit code 0 when every page loaded cleanly and showed its gallery or viewer.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
UNSEG = [str(Path(sys.executable).with_name("unseg"))]  # the command of this environment
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--remote-debugging-pipe", "--window-size=1400,1000", "--hide-scrollbars",
]
NAMES = {"0": "dense stroma", "1": {"name": "tumour nests", "colour": "#b4285a"},
         "2": "glass / background"}


class Browser:
    """Headless Chromium driven over the DevTools protocol on file descriptors 3 and 4."""

    def __init__(self, chromium: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="unseg-chromium-")
        to_browser, self._to_browser = os.pipe()
        self._from_browser, from_browser = os.pipe()

        def wire() -> None:  # in the child: its fd 3 reads commands, fd 4 writes replies
            read, write = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser))
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            preexec_fn=wire, close_fds=False, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        target = next(t for t in self.call("Target.getTargets")["targetInfos"]
                      if t["type"] == "page")
        self.session = self.call("Target.attachToTarget", targetId=target["targetId"],
                                 flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=True)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=1400, height=1000,
                  deviceScaleFactor=1, mobile=False)

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", session=True, expression=expression,
                           returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def wait(self, expression: str, seconds: float = 60.0) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self.evaluate(expression):
                return True
            time.sleep(0.25)
        return False

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        if not self.wait("document.readyState === 'complete'"):
            raise RuntimeError(f"{url} did not finish loading")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def problems(self) -> list[str]:
        """Console errors and warnings, uncaught exceptions, failed loads, network requests."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append("uncaught: " + details.get("exception", {}).get(
                    "description", details.get("text", "")))
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning",
                                                                             "assert"):
                found.append(f"console.{params['type']}: "
                             + " ".join(str(a.get("value", a.get("description", "")))
                                        for a in params["args"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                entry = params["entry"]
                found.append(f"{entry['source']} {entry['level']}: {entry['text']} "
                             f"{entry.get('url', '')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                if not url.startswith(("file:", "data:", "about:")):
                    found.append(f"network request: {url}")
            elif method == "Network.loadingFailed":
                found.append(f"failed to load: {params.get('errorText')}")
        return found

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def run(command: list[str]) -> float:
    """Run an unseg command; returns its seconds."""
    print("$ unseg " + " ".join(command[len(UNSEG):]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def make_runs(out: Path, data: Path) -> dict[str, Path]:
    """The three runs and their reports; returns each report's index.html."""
    val = data / "wsss4luad-val"
    names = out / "names.json"
    names.write_text(json.dumps(NAMES, indent=1))
    run([*UNSEG, "segment", "fseg", str(val), "--out", str(out / "folder"), "--k", "8",
         "--backbone", "default", "--random-state", "0", "--report"])
    run([*UNSEG, "benchmark", "--data", str(val), "--methods",
         "kmeans-color,kmeans-color-dataset,slic", "--param", "k=4", "--out",
         str(out / "benchmark"), "--report"])
    run([*UNSEG, "slide", "segment", str(data / "slides" / "cmu_small_region.svs"), "--method",
         "kmeans-color-dataset", "--k", "6", "--names", str(names), "--out", str(out / "slide"),
         "--report"])
    return {kind: out / kind / "report" / "index.html"
            for kind in ("folder", "benchmark", "slide")}


GALLERY = "document.querySelectorAll('#gallery tbody tr').length > 0"
VIEWER = "document.querySelector('.viewer').dataset.loaded === 'yes'"
ZOOM_IN = ("document.querySelector('.opacity').value = 70;"
           "document.querySelector('.opacity').dispatchEvent(new Event('input'));"
           "for (let i = 0; i < 3; i += 1) document.querySelector('[data-zoom=\"2\"]').click()")
#: Per page, each view to screenshot: (section id, script to run first, what must hold, name).
VIEWS = {
    "folder": [("run", "", "true", "folder-run"),
               ("metrics", "", "true", "folder-metrics"),
               ("examples", "", "true", "folder-examples"),
               ("gallery", "", GALLERY, "folder-gallery")],
    "benchmark": [("comparison", "", "true", "benchmark-comparison"),
                  ("gallery", "", GALLERY, "benchmark-gallery")],
    "slide": [("viewer", "", VIEWER, "slide-viewer"),
              ("viewer", ZOOM_IN, VIEWER, "slide-viewer-zoomed"),
              ("areas", "", "true", "slide-areas")],
}
IMAGES_DRAWN = ("Array.from(document.images).filter(i => { const r = i.getBoundingClientRect();"
                " return r.bottom > 0 && r.top < innerHeight; })"
                ".every(i => i.complete && i.naturalWidth > 0)")


def check(browser: Browser, kind: str, index: Path, shots: Path) -> list[str]:
    browser.open(index.as_uri())
    failures = []
    for anchor, action, condition, name in VIEWS[kind]:
        browser.evaluate(f"document.getElementById('{anchor}').scrollIntoView()")
        if action:
            browser.evaluate(action)
            time.sleep(1.5)  # let the viewer start loading the new tiles
        if not browser.wait(condition):
            failures.append(f"{kind}: #{anchor} never showed ({condition})")
        if not browser.wait(IMAGES_DRAWN, 20):
            failures.append(f"{kind}: images in view of #{anchor} did not load")
        time.sleep(0.5)
        browser.screenshot(shots / f"{name}.png")
    failures += [f"{kind}: {p}" for p in browser.problems()]
    return failures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="work folder (runs, shots)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args()
    if not (args.data / "wsss4luad-val").is_dir():
        print(f"real data not found in {args.data}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    shots = args.out / "shots"
    shots.mkdir(exist_ok=True)
    reports = make_runs(args.out.resolve(), args.data.resolve())
    browser = Browser(args.chromium)
    try:
        failures = [f for kind, index in reports.items()
                    for f in check(browser, kind, index, shots)]
    finally:
        browser.close()
    for path in sorted(shots.glob("*.png")):
        print(f"screenshot {path}")
    for failure in failures:
        print(f"FAIL {failure}", file=sys.stderr)
    print("all reports loaded with no console errors" if not failures else
          f"{len(failures)} problem(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
