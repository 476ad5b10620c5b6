#!/usr/bin/env python3
"""What open web pages cost the pipeline: the service with N simulated cameras runs through three
phases in one sitting (no page, P pages in headless Chromium, no page again), and for each the
analysed fps (frames_inferred over the phase), the service's CPU and the browsers' CPU are printed.

Usage (hold the CPU lock: timing-sensitive):
  flock -x /work/.cpu.lock .venv/bin/python tests/it/web/cost.py --bin target/release/storetrack
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
import web_test  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TICK = os.sysconf("SC_CLK_TCK")
TABS = ["overview", "camera", "floor", "overview", "camera"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pids):
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])
        except (OSError, IndexError):
            pass
    return total / TICK


def tree(pid):
    out = [pid]
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                ppid = int(open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            if ppid == pid:
                out += tree(int(p))
    return out


def inferred(url):
    with urllib.request.urlopen(url + "/api/v1/cameras", timeout=5) as r:
        return sum(c["frames_inferred"] for c in json.load(r))


def config(dirname, cams, sim_port, port):
    text = open(os.path.join(ROOT, "config.toml")).read()
    head, rest = text.split("[[cameras]]", 1)[0], text.split("[model]", 1)[1]
    cal = text.split("calibration = [", 1)[1].split("\n]", 1)[0]
    out = head
    for i in range(1, cams + 1):
        out += f'[[cameras]]\nid = "cam{i}"\nurl = "rtsp://127.0.0.1:{sim_port}/cam{i}"\ncalibration = [{cal}\n]\n\n'
    out += "[model]" + rest
    out = out.replace('"models/ssdlite.toml"', f'"{ROOT}/models/ssdlite.toml"')
    out = out.replace('"pipelines/camera.pipeline"', f'"{ROOT}/pipelines/camera.pipeline"')
    out = out.replace('listen = "127.0.0.1:9464"', f'listen = "127.0.0.1:{port}"')
    out = out.replace('db = "storetrack.db"', f'db = "{dirname}/cost.db"')
    path = os.path.join(dirname, "config.toml")
    open(path, "w").write(out)
    return path


def phase(name, url, svc_pids, browser_pids, seconds):
    n0, c0, b0, t0 = inferred(url), cpu_s(svc_pids), cpu_s(browser_pids()), time.time()
    time.sleep(seconds)
    n1, c1, b1, t1 = inferred(url), cpu_s(svc_pids), cpu_s(browser_pids()), time.time()
    dt = t1 - t0
    row = (name, (n1 - n0) / dt, (c1 - c0) / dt * 100, (b1 - b0) / dt * 100)
    print(f"| {row[0]:<22} | {row[1]:6.2f} | {row[2]:6.1f} | {row[3]:6.1f} |", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/storetrack"))
    ap.add_argument("--cameras", type=int, default=4)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--warmup", type=float, default=20)
    a = ap.parse_args()
    d = tempfile.mkdtemp()
    sim_port, port = free_port(), free_port()
    sim = subprocess.Popen([a.bin, "simcam", "--video", f"{ROOT}/data/vtest.mp4", "--cameras", str(a.cameras),
                            "--port", str(sim_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(2)
    cfg = config(d, a.cameras, sim_port, port)
    svc = subprocess.Popen([a.bin, "run", "-c", cfg], stdout=subprocess.DEVNULL,
                           stderr=open(os.path.join(d, "run.log"), "w"))
    url = f"http://127.0.0.1:{port}"
    drivers = []
    try:
        web_test.wait("service up", lambda: inferred(url) > 0, 90)
        time.sleep(a.warmup)
        svc_pids = [svc.pid]
        browser_pids = lambda: [p for drv in drivers for p in tree(drv.service.process.pid)]  # noqa: E731
        print(f"{a.cameras} simulated cameras (vtest 768x576, detect_fps 10 each), {a.seconds:.0f} s per phase\n")
        print("| phase                  | analysed fps | service CPU % | browsers CPU % |")
        print("|---|---|---|---|")
        phase("no page", url, svc_pids, browser_pids, a.seconds)
        for i in range(a.pages):
            drv = web_test.browser()
            drv.get(url + "/#" + TABS[i % len(TABS)])
            drivers.append(drv)
        for drv in drivers:
            web_test.wait("page ready", lambda: drv.find_element("tag name", "body").get_attribute("data-ready") == "1")
        time.sleep(5)
        phase(f"{a.pages} pages open", url, svc_pids, browser_pids, a.seconds)
        for drv in drivers:
            drv.quit()
        drivers.clear()
        time.sleep(3)
        phase("no page again", url, svc_pids, browser_pids, a.seconds)
    finally:
        for drv in drivers:
            drv.quit()
        svc.terminate()
        svc.wait()
        sim.terminate()
        sim.wait()


if __name__ == "__main__":
    main()
