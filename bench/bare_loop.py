"""The yardstick of the throughput benchmark: the batch's requests and nothing else.

Sends the request bodies a batch would send for ``--count`` comments (the same prompt
template, the same model and request fields) through the same client the batch uses for them
(``--client direct``: ``moderation.model.wire``; ``--client ollama``: the official ollama
client over aiohttp), ``--parallel`` at a time, then exits. No database, no rules, no
decisions: what is left of a batch's time is what its own pipeline costs.

    python bench/bare_loop.py --url http://127.0.0.1:PORT --count 1600 --parallel 8
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.texts import body


async def run(args: argparse.Namespace) -> None:
    import ollama

    from moderation.model.host import answer_request, tls_context
    from moderation.model.prompts import load_prompt
    from moderation.model.wire import AiohttpSender, GenerateBody
    from moderation.settings import Settings

    settings = Settings(ollama_host=args.url)
    prompt = load_prompt(settings.prompt)
    fields = answer_request(settings.structured_output)
    client = ollama.AsyncClient(host=args.url, timeout=settings.timeout)
    if args.client == "ollama":
        from httpx_aiohttp import AiohttpTransport

        await client.close()
        client = ollama.AsyncClient(
            host=args.url,
            timeout=settings.timeout,
            transport=AiohttpTransport(trust_env=False, verify=tls_context(args.url)),
        )
    sender = AiohttpSender(client, args.parallel + 4, tls_context(args.url))
    template = GenerateBody(settings.model, fields)
    await client.generate(model=settings.model, prompt="")  # the batch's warm-up
    queue = iter(range(1, args.count + 1))

    async def one_by_one() -> None:
        for i in queue:
            text = prompt.render(body(i), settings.max_comment_chars)
            if args.client == "ollama":
                await client.generate(model=settings.model, prompt=text, **fields)
            else:
                await sender.post(template.encode(text))

    started = time.perf_counter()
    await asyncio.gather(*(one_by_one() for _ in range(args.parallel)))
    print(f"{args.count} requests in {time.perf_counter() - started:.3f}s", flush=True)
    await sender.close()
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--parallel", type=int, required=True)
    parser.add_argument("--client", choices=["direct", "ollama"], default="direct")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
