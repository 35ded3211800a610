"""``python -m tests.fakeprovider [--host H] [--port N]``: run the fake provider standalone.

Prints ``fake provider listening on http://H:PORT`` once ready (useful with ``--port 0``);
script it over HTTP (``POST /__script``), see ``tests/fakeprovider/server.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from .server import start_fake_provider


async def serve(host: str, port: int, latency: float) -> None:
    provider = await start_fake_provider(host, port)
    provider.latency = latency
    print(f"fake provider listening on {provider.base_url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await provider.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeprovider", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.latency))


if __name__ == "__main__":
    main()
