"""A Stepflow step service in Python, standard library only (json, sys, uuid).

The engine starts it (see stepflow-config.yml) and talks JSON-RPC 2.0 with it, one JSON message
per line on stdin/stdout. Anything printed for humans goes to stderr. See docs/protocol.md.
"""
import json
import sys
import uuid
from collections import Counter, deque

VOWELS = set("aeiou")
inbox = deque()  # messages read while waiting for the engine's answer to one of our requests


def send(message):
    sys.stdout.write(json.dumps(message, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def read():
    if inbox:
        return inbox.popleft()
    line = sys.stdin.readline()
    return json.loads(line) if line else None


def call_engine(method, params):
    """Sends a request to the engine and waits for its response (other messages are queued)."""
    request_id = str(uuid.uuid4())
    send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    while True:
        line = sys.stdin.readline()
        if not line:
            raise RuntimeError("the engine closed stdin")
        message = json.loads(line)
        if message.get("id") == request_id and "method" not in message:
            if "error" in message:
                raise RuntimeError(message["error"]["message"])
            return message["result"]
        inbox.append(message)


def letters_report(params):
    text = params["input"]["text"]
    top = params["input"].get("top", 3)
    words = [w.strip(".,;:!?\"'()").lower() for w in text.split()]
    words = [w for w in words if w]
    letters = [c for c in text.lower() if c.isalpha()]
    vowels = sum(1 for c in letters if c in VOWELS)
    longest = sorted(set(words), key=lambda w: (-len(w), w))[:top]
    common = Counter(letters).most_common(top)
    report = {
        "letters": len(letters),
        "vowels": vowels,
        "consonants": len(letters) - vowels,
        "longest_words": longest,
        "common_letters": [{"letter": c, "count": n} for c, n in common],
    }
    # a call back to the engine while this request is open: store the report as a blob
    stored = call_engine("blobs/put", {
        "data": report,
        "blob_type": "data",
        "observability": params.get("observability", {}),
    })
    return {"report": report, "blob_id": stored["blob_id"]}


COMPONENTS = {
    "/letters": {
        "description": "Letter, vowel and word-length statistics of a text; stores them as a blob",
        "input_schema": {
            "type": "object",
            "properties": {"text": {"type": "string"}, "top": {"type": "integer"}},
            "required": ["text"],
        },
        "run": letters_report,
    },
}


def handle(message):
    method = message.get("method")
    if "id" not in message:
        return  # a notification ("initialized"): nothing to answer
    answer = {"jsonrpc": "2.0", "id": message["id"]}
    try:
        if method == "initialize":
            answer["result"] = {"server_protocol_version": 1}
        elif method == "components/list":
            answer["result"] = {"components": [
                {"component": name, "description": c["description"], "input_schema": c["input_schema"]}
                for name, c in COMPONENTS.items()
            ]}
        elif method == "components/execute":
            component = COMPONENTS.get(message["params"]["component"])
            if component is None:
                answer["error"] = {"code": -32001, "message": "Component not found"}
            else:
                answer["result"] = {"output": component["run"](message["params"])}
        else:
            answer["error"] = {"code": -32601, "message": f"Method not found: '{method}'"}
    except Exception as error:  # report, do not crash
        answer["error"] = {"code": -32003, "message": f"Component execution failed: {error}"}
    send(answer)


def main():
    print("python letters service ready", file=sys.stderr, flush=True)
    while True:
        message = read()
        if message is None:
            return  # stdin closed: the engine is shutting down
        handle(message)


main()
