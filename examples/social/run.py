"""Seed 004's per-task model assignment from ``AI_<TASK>_*`` variables.

    python examples/social/run.py [--from-env] [input.json]

Sets the variables of ``.env.example`` in its own process (unless
``--from-env``: then your environment decides), builds the router with
``Router.from_env()`` and runs each task: a post (task:text), its image
(task:image), video slides (task:video-slides) and an assistant reply
(task:agent), printing the model that served each.  No key needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from pathlib import Path
from typing import Any

from polyroute import Envelope, Router

HERE = Path(__file__).resolve().parent
DESCRIPTION = "Run seed 004's tasks with models chosen by AI_<TASK>_* variables."


def env_file_values(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (comments and blanks skipped)."""
    values: dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def line(task: str, router: Router, env: Envelope, detail: str) -> str:
    pool = [c.info.id for c in router.resolve(task).candidates]
    fallback = ", ".join(pool[1:]) or "none"
    cost = "$" + format(env.cost, ".6f")
    return (
        f"{task:<18} {env.model:<38} {env.usage.total_tokens:>6} {cost:>10}  "
        f"fallback: {fallback:<30} {detail}"
    )


async def run(data: dict[str, Any]) -> None:
    async with Router.from_env() as router:
        topic, platform = data["topic"], data["platform"]
        rows: list[str] = []

        post = await router.complete(
            "task:text", f"Write a {platform} post (max 60 words) announcing: {topic}"
        )
        rows.append(line("task:text", router, post, f"post: {(post.content or '')[:40]!r}"))

        image = await router.generate_image("task:image", f"Poster photo for: {topic}")
        url = (image.images or [{}])[0].get("url", "")
        rows.append(line("task:image", router, image, f"image: {url}"))

        slides = await router.complete(
            "task:video-slides",
            f"Write 4 short video slides with narration for this post:\n{post.content}",
        )
        rows.append(line("task:video-slides", router, slides, "4 slides"))

        reply = await router.complete(
            "task:agent",
            [
                {"role": "system", "content": "You are the scheduler's assistant."},
                {"role": "user", "content": data["question"]},
            ],
        )
        rows.append(line("task:agent", router, reply, f"reply: {(reply.content or '')[:40]!r}"))

        print(f"{'task':<18} {'model':<38} {'tokens':>6} {'cost':>10}")
        print("\n".join(rows))
        total = post.cost + image.cost + slides.cost + reply.cost
        print(f"{'total':<18} {'':<38} {'':>6} {'$' + format(total, '.6f'):>10}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("input", nargs="?", default=str(HERE / "input.json"))
    parser.add_argument(
        "--from-env", action="store_true", help="use the AI_* variables already set"
    )
    args = parser.parse_args(argv)
    # Router.from_env() reads ./polyroute.yaml when POLYROUTE_CONFIG is unset; point
    # it at this example's file so the run does not depend on the current directory.
    config = str(HERE / "polyroute.yaml")
    if args.from_env:
        os.environ.setdefault("POLYROUTE_CONFIG", config)
    else:
        os.environ.update(env_file_values(HERE / ".env.example"))
        os.environ["POLYROUTE_CONFIG"] = config
    data = json.loads(Path(args.input).read_text("utf-8"))
    asyncio.run(run(data))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
