"""Load test of the web service: N concurrent clients posting a short clip for T seconds.

    python bench/load_test.py [--model DIR | --random-model] [--clients 32] [--seconds 60]
                              [--clip FILE] [--workers-threads N] [--backend auto]

Starts ``emovox serve`` on 127.0.0.1 (a child process, a free port), warms it up, then runs
``--clients`` asyncio clients (httpx), each posting the clip (raw body) again as soon as its
previous answer arrives, for ``--seconds``; meanwhile ``/v1/health`` is probed twice a second.
Reports throughput (answered requests per second), latency percentiles, errors (any non-200 or
transport failure, by kind), health latency under load and the server's peak memory.

The default clip is a bundled CREMA-D demo clip (2.5 s of speech, Ogg/Opus as a browser
records it). Client timeouts are generous (300 s): a server that is saturated queues requests
rather than failing them, and the latency figures say how long they waited.

Writes ``bench/results/load.json`` (one entry per model, kept across runs) and the load section
of ``docs/service.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from importlib import resources
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import httpx  # noqa: E402

from emovox.io import atomic_write_json, atomic_write_text  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results" / "load.json"
DOC = ROOT / "docs" / "service.md"
BEGIN, END = "<!-- load-results:begin -->", "<!-- load-results:end -->"
DEFAULT_CLIP = "1074_IOM_NEU_XX.opus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, max(0, round(q / 100 * len(v) + 0.5) - 1))]


def summary_ms(values: list[float]) -> dict[str, float]:
    ms = [1e3 * v for v in values]
    if not ms:
        return {}
    return {
        "p50": round(pct(ms, 50), 1),
        "p90": round(pct(ms, 90), 1),
        "p99": round(pct(ms, 99), 1),
        "max": round(max(ms), 1),
        "mean": round(statistics.fmean(ms), 1),
    }


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def start_server(args: argparse.Namespace, model: str | None, port: int, log: Path):
    cmd = [sys.executable, "-m", "emovox.cli", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--backend", args.backend]  # fmt: skip
    if model:
        cmd += ["--model", model]
    if args.workers_threads:
        cmd += ["--workers-threads", str(args.workers_threads)]
    fh = log.open("w")
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + args.start_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            r = httpx.get(url + "/v1/health", timeout=2)
            if r.status_code == 200:
                return proc, url, r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise SystemExit(f"the server did not answer in {args.start_timeout} s:\n{log.read_text()}")


async def run_load(url: str, clip: bytes, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    health: list[float] = []
    labels: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=clients + 2, max_keepalive_connections=clients + 2)
    timeout = httpx.Timeout(300.0, connect=30.0)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as c:
        t0 = time.perf_counter()
        end = t0 + seconds

        async def client() -> None:
            while time.perf_counter() < end:
                t = time.perf_counter()
                try:
                    r = await c.post(
                        "/v1/predict", content=clip,
                        headers={"content-type": "application/octet-stream"},
                    )  # fmt: skip
                except httpx.HTTPError as exc:
                    errors[type(exc).__name__] += 1
                    continue
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - t)
                    labels[r.json()["label"]] += 1
                else:
                    errors[f"HTTP {r.status_code}"] += 1

        def probe() -> None:  # its own thread and connection: the clients' loop adds no delay
            with httpx.Client(base_url=url, timeout=timeout) as hc:
                while time.perf_counter() < end:
                    t = time.perf_counter()
                    try:
                        r = hc.get("/v1/health")
                        if r.status_code == 200:
                            health.append(time.perf_counter() - t)
                        else:
                            errors[f"health HTTP {r.status_code}"] += 1
                    except httpx.HTTPError as exc:
                        errors[f"health {type(exc).__name__}"] += 1
                    time.sleep(0.5)

        await asyncio.gather(*[client() for _ in range(clients)], asyncio.to_thread(probe))
        elapsed = time.perf_counter() - t0
    return {
        "elapsed_s": round(elapsed, 2),
        "requests_ok": len(latencies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "throughput_rps": round(len(latencies) / elapsed, 2),
        "latency_ms": summary_ms(latencies),
        "health_latency_ms": summary_ms(health),
        "labels": dict(labels),
    }


def render(runs: dict[str, dict]) -> str:
    lines = [
        BEGIN,
        "",
        "| model | backend | threads | clients | s | req/s | p50 ms | p99 ms | errors "
        "| health p99 ms | peak RSS MB | machine |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, r in runs.items():
        lines.append(
            f"| {key} | {r['backend']} | {r['workers_threads']} | {r['clients']} | "
            f"{r['seconds']:g} | {r['throughput_rps']:.1f} | {r['latency_ms'].get('p50', '-')} | "
            f"{r['latency_ms'].get('p99', '-')} | {r['errors']} | "
            f"{r['health_latency_ms'].get('p99', '-')} | {r.get('server_peak_rss_mb') or '-'} | "
            f"{r['cpu_count']} CPU, load {r.get('load_avg_before', '?')}, {r['date']} |"
        )
    lines += [
        "",
        "Clip: a bundled CREMA-D demo clip (Ogg/Opus) unless noted in `bench/results/load.json`. "
        "Throughput counts answered requests (HTTP 200) per second of the run; latency is from "
        "sending the request to the whole answer, queueing included. The clients run on the same "
        "machine as the server; `load` is the 1-minute load average before the run (anything "
        "above the CPU count means other work was competing).",
        "",
        END,
    ]
    return "\n".join(lines)


def write_doc(runs: dict[str, dict]) -> None:
    text = DOC.read_text() if DOC.exists() else "# Web service\n\n## Load test\n\n"
    block = render(runs)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    atomic_write_text(DOC, text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", help="model folder (default: the packaged default model)")
    ap.add_argument("--random-model", action="store_true", help="a random-weights test model")
    ap.add_argument("--name", help="key of this run in load.json (default: the model's name)")
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--clip", type=Path, help="audio file to post (default: a demo clip)")
    ap.add_argument("--workers-threads", type=int, default=None)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--start-timeout", type=float, default=300.0)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()

    clip_path = args.clip or Path(str(resources.files("emovox") / "assets" / "demo" / DEFAULT_CLIP))
    clip = clip_path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="emovox-load-") as tmp:
        model = args.model
        if args.random_model:
            from emovox.inference.random_bundle import make_random_bundle

            model = str(make_random_bundle(Path(tmp) / "random-model"))
        proc, url, health = start_server(args, model, free_port(), Path(tmp) / "server.log")
        load_before = os.getloadavg()[0]
        try:
            for _ in range(3):  # warm up (first-call costs are not load)
                r = httpx.post(url + "/v1/predict", content=clip, timeout=300)
                if r.status_code != 200:
                    raise SystemExit(f"the clip is refused: {r.status_code} {r.text}")
            duration = r.json()["duration"]
            print(
                f"server up: {health['model']} ({health['backend']}, {health['workers']} "
                f"threads); {args.clients} clients for {args.seconds:g} s ...",
                flush=True,
            )
            res = asyncio.run(run_load(url, clip, args.clients, args.seconds))
            rss = peak_rss_mb(proc.pid)
            load_after = os.getloadavg()[0]
            after = httpx.get(url + "/v1/health", timeout=10).json()
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    res = {
        "model": health["model"],
        "backend": health["backend"],
        "workers_threads": health["workers"],
        "clients": args.clients,
        "seconds": args.seconds,
        "clip": {"file": clip_path.name, "bytes": len(clip), "seconds": duration},
        **res,
        "server_peak_rss_mb": rss,
        "server_served": after["served"],
        "cpu_count": os.cpu_count(),
        # 1-minute load average: other work on the machine competes with the server and clients
        "load_avg_before": round(load_before, 2),
        "load_avg_after": round(load_after, 2),
        "machine": f"{platform.machine()} {platform.processor() or platform.system()}",
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(res, indent=2))
    if args.no_write:
        return
    key = args.name or ("random-bundle" if args.random_model else str(health["model"]))
    data = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": {}}
    data.setdefault("runs", {})[key] = res
    atomic_write_json(RESULTS, data)
    write_doc(data["runs"])
    print(f"wrote {RESULTS.relative_to(ROOT)} and the load section of {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
