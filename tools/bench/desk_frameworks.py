"""The desk's web framework, measured: aiohttp vs FastAPI on uvicorn, each serving one JSON
endpoint (50 nodes' health) inside an asyncio loop it shares with a busy task (the ingest's
stand-in), 2,000 keep-alive requests from a client in another process.

    python -m lwtools.bench.desk_frameworks aiohttp
    python -m lwtools.bench.desk_frameworks fastapi     # needs `pip install fastapi uvicorn`

Prints start-up time, requests/s, the busy task's loop turns per second idle and while
serving, and the process's peak RSS (docs/decisions.md, "The desk's web server").
"""
import argparse
import asyncio
import resource
import sys
import time

PAYLOAD = {"nodes": [{"id": i, "state": "online", "battery_mv": 3900} for i in range(50)]}

async def busy(counter):
    while True:
        counter[0] += 1
        await asyncio.sleep(0)

async def main(which):
    t0 = time.perf_counter()
    if which == "aiohttp":
        from aiohttp import web
        async def h(request):
            return web.json_response(PAYLOAD)
        app = web.Application(); app.router.add_get("/api/nodes", h)
        runner = web.AppRunner(app, access_log=None); await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 8765); await site.start()
        stop = runner.cleanup
    else:
        import uvicorn
        from fastapi import FastAPI
        app = FastAPI()
        @app.get("/api/nodes")
        async def h():
            return PAYLOAD
        class S(uvicorn.Server):
            def install_signal_handlers(self): pass
        server = S(uvicorn.Config(app, host="127.0.0.1", port=8765, log_level="warning", access_log=False))
        task = asyncio.create_task(server.serve())
        while not server.started: await asyncio.sleep(0.01)
        async def stop():
            server.should_exit = True; await task
    ready = time.perf_counter() - t0
    counter = [0]
    b = asyncio.create_task(busy(counter))
    await asyncio.sleep(1); base = counter[0]; counter[0] = 0
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", """
import http.client, time
c = http.client.HTTPConnection('127.0.0.1', 8765); t=time.perf_counter(); n=2000
for _ in range(n):
    c.request('GET','/api/nodes'); r=c.getresponse(); r.read()
print(n/(time.perf_counter()-t))""", stdout=asyncio.subprocess.PIPE)
    t = time.perf_counter()
    out, _ = await proc.communicate()
    dt = time.perf_counter() - t
    b.cancel()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"{which}: start {ready*1000:.0f} ms, {float(out):.0f} req/s (keep-alive, 1 client), "
          f"busy ticks/s idle {base} vs serving {counter[0]/dt:.0f}, max RSS {rss} MB")
    await stop()

if __name__ == "__main__":
    ap = argparse.ArgumentParser(prog="python -m lwtools.bench.desk_frameworks", description=__doc__.split("\n")[0])
    ap.add_argument("framework", nargs="?", choices=("aiohttp", "fastapi"), default="aiohttp",
                    help="the web framework measured (fastapi needs fastapi and uvicorn installed)")
    asyncio.run(main(ap.parse_args().framework))
