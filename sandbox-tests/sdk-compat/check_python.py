"""The official OpenAI Python SDK, unchanged, against a cocoon gateway.

Usage: check_python.py BASE_URL   (e.g. http://127.0.0.1:PORT/v1)

Each check prints what it saw; the script exits non-zero if any check failed. Nothing here patches or
wraps the SDK: it is used exactly as an app developer would use it, with only `base_url` changed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from typing import Callable

import openai
from openai import AsyncOpenAI, OpenAI

PROMPT = "Say hello in three words."


class CheckFailed(Exception):
    """A check saw something the SDK's user would not expect."""


class KnownGap(Exception):
    """A difference from OpenAI we know about and track; fatal only with COCOON_SDK_STRICT=1."""


def expect(cond: bool, what: str) -> None:
    if not cond:
        raise CheckFailed(what)


def check_usage(usage: object, where: str) -> None:
    expect(usage is not None, f"{where}: no usage")
    p, c, t = usage.prompt_tokens, usage.completion_tokens, usage.total_tokens  # type: ignore[attr-defined]
    expect(isinstance(p, int) and p > 0, f"{where}: prompt_tokens={p!r}")
    expect(isinstance(c, int) and c > 0, f"{where}: completion_tokens={c!r}")
    expect(t == p + c, f"{where}: total_tokens={t!r} != {p} + {c}")


def models(client: OpenAI, state: dict) -> str:
    page = client.models.list()
    ids = [m.id for m in page.data]
    expect(len(ids) > 0, "no models listed")
    for m in page.data:
        expect(m.object == "model", f"model {m.id!r} has object={m.object!r}")
    state["model"] = ids[0]
    return f"{len(ids)} model(s): {', '.join(ids)}"


def models_retrieve(client: OpenAI, state: dict) -> str:
    raw = client.models.with_raw_response.retrieve(state["model"])
    m = raw.parse()
    expect(isinstance(m, openai.types.Model), f"parsed into {type(m).__name__}")
    expect(m.id == state["model"], f"id={m.id!r}")
    expect(m.object == "model", f"object={m.object!r}")
    request_id = raw.headers.get("x-request-id")
    expect(bool(request_id), "no x-request-id")
    try:
        client.models.retrieve("no-such-model")
    except openai.NotFoundError as e:
        expect(e.code == "model_not_found", f"unknown model: code={e.code!r}")
        expect(bool(e.response.headers.get("x-request-id")), "unknown model: no x-request-id")
        return f"{m.id} owned_by={m.owned_by} x-request-id={request_id}; unknown: NotFoundError 404 code={e.code}"
    raise CheckFailed("unknown model: no error raised")


def chat(client: OpenAI, state: dict) -> str:
    raw = client.chat.completions.with_raw_response.create(
        model=state["model"],
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=16,
        temperature=0,
        seed=7,
    )
    r = raw.parse()
    expect(isinstance(r, openai.types.chat.ChatCompletion), f"parsed into {type(r).__name__}")
    expect(r.object == "chat.completion", f"object={r.object!r}")
    expect(isinstance(r.id, str) and r.id != "", f"id={r.id!r}")
    expect(isinstance(r.created, int) and r.created > 0, f"created={r.created!r}")
    expect(len(r.choices) == 1, f"{len(r.choices)} choices")
    msg = r.choices[0].message
    expect(msg.role == "assistant", f"role={msg.role!r}")
    expect(bool(msg.content), f"content={msg.content!r}")
    expect(r.choices[0].finish_reason in ("stop", "length"), f"finish_reason={r.choices[0].finish_reason!r}")
    check_usage(r.usage, "usage")
    receipt = raw.headers.get("x-cocoon-receipt-status")
    expect(receipt == "verified", f"x-cocoon-receipt-status={receipt!r}")
    u = r.usage
    return (
        f"id={r.id} content={msg.content!r} finish={r.choices[0].finish_reason} "
        f"usage={u.prompt_tokens}+{u.completion_tokens}={u.total_tokens} receipt={receipt}"
    )


def chat_stream(client: OpenAI, state: dict) -> str:
    stream = client.chat.completions.create(
        model=state["model"],
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=16,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    expect(len(chunks) >= 2, f"{len(chunks)} chunk(s)")
    for c in chunks:
        expect(isinstance(c, openai.types.chat.ChatCompletionChunk), f"chunk parsed into {type(c).__name__}")
        expect(c.object == "chat.completion.chunk", f"chunk object={c.object!r}")
    ids = {c.id for c in chunks}
    expect(len(ids) == 1, f"chunk ids differ: {ids}")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    expect(text != "", "no content in the stream")
    last = chunks[-1]
    expect(last.choices == [], f"final usage chunk has choices={last.choices!r}")
    check_usage(last.usage, "final chunk usage")
    expect(all(c.usage is None for c in chunks[:-1]), "usage on a chunk before the last")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect(finishes in (["stop"], ["length"]), f"finish_reason(s)={finishes}")
    u = last.usage
    return f"{len(chunks)} chunks, text={text!r}, finish={finishes[0]}, usage={u.prompt_tokens}+{u.completion_tokens}"


def chat_stream_helper(client: OpenAI, state: dict) -> str:
    # The SDK's accumulating helper, which many apps use for streaming.
    with client.chat.completions.stream(
        model=state["model"],
        messages=[{"role": "user", "content": PROMPT}],
        max_tokens=16,
        temperature=0,
        stream_options={"include_usage": True},
    ) as stream:
        deltas = sum(1 for ev in stream if ev.type == "content.delta")
        final = stream.get_final_completion()
    expect(deltas > 0, "no content.delta events")
    expect(bool(final.choices[0].message.content), "empty final content")
    check_usage(final.usage, "final completion usage")
    return f"{deltas} content.delta events, final={final.choices[0].message.content!r}"


def chat_stream_async(client: OpenAI, state: dict) -> str:
    async def run() -> tuple[int, str]:
        aclient = AsyncOpenAI(base_url=str(client.base_url), api_key=client.api_key, max_retries=0, timeout=120)
        try:
            stream = await aclient.chat.completions.create(
                model=state["model"],
                messages=[{"role": "user", "content": PROMPT}],
                max_tokens=16,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
            )
            n, text = 0, ""
            async for c in stream:
                n += 1
                if c.choices:
                    text += c.choices[0].delta.content or ""
                else:
                    check_usage(c.usage, "async final chunk usage")
            return n, text
        finally:
            await aclient.close()

    n, text = asyncio.run(run())
    expect(text != "", "no content in the async stream")
    return f"AsyncOpenAI: {n} chunks, text={text!r}"


def completion_stream(client: OpenAI, state: dict) -> str:
    stream = client.completions.create(
        model=state["model"],
        prompt="The capital of France is",
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    for c in chunks:
        expect(isinstance(c, openai.types.Completion), f"chunk parsed into {type(c).__name__}")
        expect(c.object == "text_completion", f"chunk object={c.object!r}")
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    expect(text != "", "no text in the stream")
    check_usage(chunks[-1].usage, "final chunk usage")
    return f"{len(chunks)} chunks, text={text!r}"


def stream_without_usage(client: OpenAI, state: dict) -> str:
    # OpenAI sends a usage chunk only when stream_options.include_usage is set; the loop below is the
    # SDK README's own streaming example, which indexes choices[0] on every chunk.
    stream = client.chat.completions.create(
        model=state["model"], messages=[{"role": "user", "content": PROMPT}], max_tokens=16, stream=True
    )
    text = ""
    try:
        for chunk in stream:
            text += chunk.choices[0].delta.content or ""
    except IndexError as e:
        raise KnownGap(
            "a chunk with empty `choices` (the usage chunk the gateway asks for on the client's behalf) "
            f"reached a client that did not set include_usage: the README loop raises IndexError ({e})"
        ) from e
    expect(text != "", "no content")
    return f"README loop ok, text={text!r}"


def completion(client: OpenAI, state: dict) -> str:
    r = client.completions.create(model=state["model"], prompt="The capital of France is", max_tokens=8, temperature=0)
    expect(isinstance(r, openai.types.Completion), f"parsed into {type(r).__name__}")
    expect(r.object == "text_completion", f"object={r.object!r}")
    expect(isinstance(r.id, str) and r.id != "", f"id={r.id!r}")
    expect(len(r.choices) == 1 and bool(r.choices[0].text), f"choices={r.choices!r}")
    check_usage(r.usage, "usage")
    return f"id={r.id} text={r.choices[0].text!r} usage={r.usage.prompt_tokens}+{r.usage.completion_tokens}"


def unknown_model(client: OpenAI, state: dict) -> str:
    try:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "hi"}])
    except openai.NotFoundError as e:
        expect(e.status_code == 404, f"status={e.status_code}")
        expect(e.code == "model_not_found", f"code={e.code!r}")
        expect(bool(e.message), "empty message")
        return f"NotFoundError status={e.status_code} code={e.code} type={e.type} message={e.message!r}"
    raise CheckFailed("no error raised")


def invalid_field(client: OpenAI, state: dict) -> str:
    seen = []
    cases = [
        ("max_tokens", {"max_tokens": 10**9}),
        ("n", {"n": 1000}),
    ]
    for param, kwargs in cases:
        try:
            client.chat.completions.create(model=state["model"], messages=[{"role": "user", "content": "hi"}], **kwargs)
        except openai.BadRequestError as e:
            expect(e.status_code == 400, f"{param}: status={e.status_code}")
            expect(e.code == "invalid_field", f"{param}: code={e.code!r}")
            expect(e.param == param, f"{param}: param={e.param!r}")
            seen.append(f"{param}: BadRequestError 400 code={e.code} param={e.param} message={e.message!r}")
            continue
        raise CheckFailed(f"{param}: no error raised")
    try:
        client.chat.completions.create(
            model=state["model"], messages=[{"role": "user", "content": "hi"}], extra_body={"no_such_field": 1}
        )
    except openai.BadRequestError as e:
        expect(e.code == "unsupported_field", f"unknown field: code={e.code!r}")
        seen.append(f"unknown field: BadRequestError 400 code={e.code} param={e.param}")
    else:
        raise CheckFailed("unknown field: no error raised")
    return "; ".join(seen)


def oversized_body(client: OpenAI, state: dict) -> str:
    try:
        client.chat.completions.create(
            model=state["model"], messages=[{"role": "user", "content": "x" * (2 << 20)}], max_tokens=1
        )
    except openai.APIStatusError as e:
        expect(e.status_code == 413, f"status={e.status_code}")
        expect(e.code == "body_too_large", f"code={e.code!r}")
        return f"2 MiB body: {type(e).__name__} {e.status_code} code={e.code} message={e.message!r}"
    except openai.APIConnectionError as e:
        raise KnownGap(
            "the gateway stops reading at its body limit and closes the connection while the client is "
            f"still sending, so the client may see a broken connection instead of the 413 ({e.__cause__!r})"
        ) from e
    raise CheckFailed("no error raised")


CHECKS: list[tuple[str, Callable[[OpenAI, dict], str]]] = [
    ("models.list", models),
    ("models.retrieve", models_retrieve),
    ("chat.completions", chat),
    ("chat.completions stream+usage", chat_stream),
    ("chat.completions.stream helper", chat_stream_helper),
    ("AsyncOpenAI stream", chat_stream_async),
    ("completions (legacy)", completion),
    ("completions (legacy) stream", completion_stream),
    ("stream without include_usage", stream_without_usage),
    ("error: unknown model", unknown_model),
    ("error: invalid fields", invalid_field),
    ("error: oversized body", oversized_body),
]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    # The gateway needs no key unless it was started with one; the SDK insists on some value.
    # No retries: a failure must show the first answer, not the third.
    client = OpenAI(base_url=sys.argv[1], api_key="cocoon-local", max_retries=0, timeout=120)
    state: dict = {}
    strict = os.environ.get("COCOON_SDK_STRICT") == "1"
    passed = failed = gaps = 0
    print(f"python openai {openai.__version__} against {sys.argv[1]}")
    for name, fn in CHECKS:
        try:
            seen = fn(client, state)
        except CheckFailed as e:
            failed += 1
            print(f"FAIL {name}: {e}")
        except KnownGap as e:
            if strict:
                failed += 1
                print(f"FAIL {name} (known gap, COCOON_SDK_STRICT=1): {e}")
            else:
                gaps += 1
                print(f"GAP  {name} (known, counted as skipped): {e}")
        except Exception as e:  # noqa: BLE001 - the SDK rejecting our answer is exactly what we look for
            failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}")
            traceback.print_exc(limit=3)
        else:
            passed += 1
            print(f"ok   {name}: {seen}")
        if "model" not in state:
            print("no model to ask: stopping")
            failed += len(CHECKS) - passed - failed - gaps
            break
    print(f"sdk-python: {passed} passed, {failed} failed, {gaps} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
