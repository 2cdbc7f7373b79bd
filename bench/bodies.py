#!/usr/bin/env python3
"""Writes chat-completion bodies of about the given sizes: a system prompt and turns of prose, code and JSON."""
import json, sys

PROSE = ("The gateway reads the request body once, estimates the prompt's tokens and routes the request to the cluster "
         "that serves the model. Operators point the official SDKs at it and expect it to just work, fast. ")
CODE = "public static int Add(int a, int b)\n{\n    return a + b; // the sum\n}\n"
JSON = "{\"id\": 42, \"name\": \"widget\", \"tags\": [\"a\", \"b\"], \"price\": 12.5}\n"

def repeat(unit, n, turn=0):
    # Each turn starts somewhere else in the text, as the turns of a real conversation differ.
    start = (turn * 7) % len(unit)
    text = f"Turn {turn}: " + (unit * (n // len(unit) + 2))[start:]
    return text[:max(1, n)]

def body(size, model, stream=False):
    messages = [{"role": "system", "content": repeat(PROSE, min(2048, size // 2))}]
    turn = 0
    while True:
        doc = {"model": model, "messages": messages, "max_tokens": 256, "temperature": 0.7}
        if stream:
            doc["stream"] = True
        current = len(json.dumps(doc).encode())
        if current >= size - 64:
            return json.dumps(doc).encode()
        unit = (PROSE, CODE, JSON)[turn % 3]
        messages.append({"role": "user" if turn % 2 == 0 else "assistant", "content": repeat(unit, min(2048, size - current - 64), turn)})
        turn += 1

out, model = sys.argv[1], sys.argv[2]
for size in map(int, sys.argv[3:]):
    open(f"{out}/body-{size}.json", "wb").write(body(size, model))
open(f"{out}/body-stream.json", "wb").write(body(1024, model, stream=True))
