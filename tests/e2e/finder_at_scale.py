"""The school's session finder on a city-sized database: bytes transferred and time until the
results are on screen, in Debian's chromium. A measurement, not a test (run by hand; the README
has the figures):

    kepu bench statistics --database postgres://postgres@127.0.0.1:5432/postgres --requests 1 --keep-database
    python tests/e2e/finder_at_scale.py --database <the kept database's URL> [--kepu target/release/kepu]

It adds a school near the city centre and its account through the API (as the benchmark's
`admin`), serves that database, logs in, then loads the finder cold (no cache) five times."""

import argparse
import json
import os
import statistics
import subprocess
import time
import urllib.request

from playwright.sync_api import sync_playwright

from conftest import Api, free_port

BENCH_ADMIN_PASSWORD = "bench-password-1"
PASSWORD = "school-password-1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--database", required=True)
    ap.add_argument("--kepu", default="target/release/kepu")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--loads", type=int, default=5)
    args = ap.parse_args()

    port = free_port()
    env = {**os.environ, "DATABASE_URL": args.database, "RUST_LOG": "warn",
           "KEPU_RATE_ANONYMOUS_PER_MINUTE": "0", "KEPU_RATE_ACCOUNT_PER_MINUTE": "0"}
    server = subprocess.Popen([args.kepu, "serve", "--bind", f"127.0.0.1:{port}", "--sweep-seconds", "0",
                               "--no-webhook-worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{base}/readyz", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        admin = Api(base)
        admin.token = admin.call("POST", "/v1/auth/token", {"username": "admin", "password": BENCH_ADMIN_PASSWORD})["access_token"]
        school = admin.call("POST", "/v1/schools", {
            "name": "测量小学", "district_code": "440106", "address": "天河路 1 号",
            "location": {"lat": 23.135, "lon": 113.33}, "kind": "primary", "student_count": 1200})
        username = f"measure-{school['id'][-8:]}"
        admin.call("POST", "/v1/users", {"username": username, "password": PASSWORD, "role": "school", "school_id": school["id"]})

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox"])
            ctx = browser.new_context(base_url=base, locale="zh-CN", timezone_id="Asia/Shanghai", viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto("/#/login")
            page.get_by_label("用户名").fill(username)
            page.get_by_label("密码").fill(PASSWORD)
            page.get_by_role("button", name="登录").click()
            page.get_by_role("button", name="退出登录").wait_for()
            cdp = ctx.new_cdp_session(page)
            cdp.send("Network.enable")
            cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
            transferred = {"bytes": 0, "requests": 0}

            def finished(e):
                transferred["bytes"] += e["encodedDataLength"]
                transferred["requests"] += 1

            cdp.on("Network.loadingFinished", finished)
            times, sizes, results = [], [], None
            for _ in range(args.loads):
                transferred.update(bytes=0, requests=0)
                page.goto("about:blank")
                t0 = time.perf_counter()
                page.goto("/#/find")
                page.locator("li[data-session]").first.wait_for(timeout=30_000)
                times.append((time.perf_counter() - t0) * 1000)
                page.wait_for_load_state("networkidle")
                sizes.append(transferred["bytes"])
                results = page.locator("li[data-session]").count()
            browser.close()
        print(json.dumps({
            "measure": "school_session_finder", "database": "postgres" if args.database.startswith("postgres") else "sqlite",
            "results_shown": results, "loads": args.loads,
            "to_results_ms_p50": round(statistics.median(times), 1), "to_results_ms_max": round(max(times), 1),
            "transferred_bytes_p50": int(statistics.median(sizes)), "requests": transferred["requests"],
        }))
    finally:
        server.terminate()
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
