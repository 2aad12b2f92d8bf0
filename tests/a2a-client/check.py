"""End-to-end check with the official A2A Python client (a2a-sdk 0.3.x).

Usage: python check.py <url> [<url> ...]

For each URL (an agent's own URL, or a workspace's proxy URL) it does what an
agent author's client does: resolves the card relative to the URL, then sends
a message, streams one, continues an input-required task, and resubscribes
to a running task. It prints one line per step and exits non-zero on the
first failure. The agent must be molecule-agent's echo executor (a message
starting with `ask:` asks the rest as a question).
"""

import asyncio
import sys
import uuid

import httpx
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import Message, Part, Role, TaskIdParams, TaskQueryParams, TaskState, TextPart


def message(text, task_id=None, context_id=None):
    return Message(
        role=Role.user,
        message_id=str(uuid.uuid4()),
        parts=[Part(root=TextPart(text=text))],
        task_id=task_id,
        context_id=context_id,
    )


def reply_text(task):
    artifact = task.artifacts[-1]
    return "".join(p.root.text for p in artifact.parts if hasattr(p.root, "text"))


def check(condition, what):
    if not condition:
        raise AssertionError(what)


async def last_task(stream):
    task, updates = None, []
    async for event in stream:
        check(isinstance(event, tuple), f"expected task events, got {event!r}")
        task, update = event
        if update is not None:
            updates.append(update)
    return task, updates


async def run(url):
    async with httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, base_url=url).get_agent_card()
        check(card.url.rstrip("/") == url.rstrip("/"), f"card url {card.url} is not {url}")
        print(f"{url}: card {card.name!r}, protocol {card.protocol_version}")

        unary = ClientFactory(ClientConfig(streaming=False, httpx_client=http)).create(card)
        streaming = ClientFactory(ClientConfig(streaming=True, httpx_client=http)).create(card)

        task, _ = await last_task(unary.send_message(message("hello")))
        check(task.status.state == TaskState.completed, f"send: {task.status.state}")
        check(reply_text(task) == "echo: hello", f"send reply: {reply_text(task)!r}")
        print(f"{url}: message/send -> {task.status.state.value}")

        task, updates = await last_task(streaming.send_message(message("one two three")))
        check(task.status.state == TaskState.completed, f"stream: {task.status.state}")
        check(len(updates) >= 2, f"stream updates: {len(updates)}")
        check(reply_text(task) == "echo: one two three", f"stream reply: {reply_text(task)!r}")
        print(f"{url}: message/stream -> {len(updates)} updates, {task.status.state.value}")

        asked, _ = await last_task(unary.send_message(message("ask: your name?")))
        check(asked.status.state == TaskState.input_required, f"ask: {asked.status.state}")
        done, _ = await last_task(
            unary.send_message(message("Bob", task_id=asked.id, context_id=asked.context_id))
        )
        check(done.id == asked.id, "continued the same task")
        check(done.status.state == TaskState.completed, f"answer: {done.status.state}")
        check(len(done.history) == 4, f"history: {len(done.history)}")
        check(reply_text(done) == "echo: Bob", f"answer reply: {reply_text(done)!r}")
        print(f"{url}: multi-turn -> input-required, then {done.status.state.value}")

        # A long task, resubscribed to while it runs, then canceled.
        started = streaming.send_message(message(" ".join(["word"] * 200)))
        first = await started.__anext__()
        task_id = first[0].id
        await started.aclose()
        resub = streaming.resubscribe(TaskIdParams(id=task_id))
        event = await resub.__anext__()
        check(event[0].id == task_id, "resubscribed to the task")
        canceled = await unary.cancel_task(TaskIdParams(id=task_id))
        check(canceled.status.state == TaskState.canceled, f"cancel: {canceled.status.state}")
        task, _ = await last_task(resub)
        fetched = await unary.get_task(TaskQueryParams(id=task_id))
        check(fetched.status.state == TaskState.canceled, f"get: {fetched.status.state}")
        print(f"{url}: tasks/resubscribe -> events until {fetched.status.state.value}")


async def main(urls):
    for url in urls:
        await run(url)
    print("ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
