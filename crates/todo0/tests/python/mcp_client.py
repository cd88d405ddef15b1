"""An independent MCP client for todo0's interop test: the official Python MCP SDK over
Streamable HTTP with a bearer token.

Run by crates/todo0/tests/integration/python_sdk.rs. Input comes only from the environment
(MCP_URL, MCP_TOKEN, MCP_SCENARIO = "full" | "read-only"); the token is never printed. MCP_URL is
https, its certificate from a local CA named in SSL_CERT_FILE (which the SDK's httpx2 client
reads when it builds its default SSL context) and REQUESTS_CA_BUNDLE (read by requests); the script
also checks that neither client trusts the server without them. The script
prints exactly one JSON line on stdout: what it saw, plus "failures" (empty when every check
passed). It exits 0 when the run completed, whether or not checks failed (the Rust test asserts on
the summary), and 1 when an exception aborted the run (the summary's failures then say which).

Results are compared in their wire form (model_dump(by_alias=True)), so the checks read the MCP
2025-11-25 field names (inputSchema, structuredContent, isError, _meta) whatever the SDK's Python
attribute names are.
"""

import asyncio
import json
import logging
import os
import sys
from typing import Any
from urllib.parse import urlsplit

import requests

from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

try:  # mcp 2.x is built on httpx2
    import httpx2 as httpx
except ImportError:  # mcp 1.x
    import httpx

try:
    from mcp.shared._httpx_utils import create_mcp_http_client
except ImportError:  # pragma: no cover - older layouts
    create_mcp_http_client = None

TOOLS = {
    "get-todos": ["mcp:connect", "mcp:tools:read"],
    "create-todo": ["mcp:connect", "mcp:tools:manage"],
    "update-todo": ["mcp:connect", "mcp:tools:manage"],
    "toggle-todo": ["mcp:connect", "mcp:tools:manage"],
    "delete-todo": ["mcp:connect", "mcp:tools:delete"],
}

summary: dict[str, Any] = {"sdk": None, "failures": []}


def check(condition: bool, message: str) -> bool:
    if not condition:
        summary["failures"].append(message)
    return condition


def wire(model: Any) -> dict[str, Any]:
    return model.model_dump(by_alias=True, mode="json", exclude_none=True)


def text_of(result: dict[str, Any]) -> str:
    return " ".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")


def describe(e: BaseException) -> str:
    """An exception, with the leaves of (anyio) exception groups spelled out."""
    if isinstance(e, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in e.exceptions)
    return f"{type(e).__name__}: {e}"


def sdk_version() -> str:
    from importlib.metadata import version

    return version("mcp")


class SdkWarnings(logging.Handler):
    """The SDK's warnings and errors, collected into the summary instead of going to stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        summary.setdefault("sdkWarnings", []).append(record.getMessage())


class HttpLog:
    """Every HTTP response the SDK's client received: method, status, content type, challenge;
    and the MCP-Protocol-Version header values it sent."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self.protocol_headers: set[str] = set()

    async def on_request(self, request: Any) -> None:
        value = request.headers.get("mcp-protocol-version")
        if value is not None:
            self.protocol_headers.add(value)

    async def __call__(self, response: Any) -> None:
        self.entries.append(
            {
                "method": response.request.method,
                "status": response.status_code,
                "contentType": response.headers.get("content-type"),
                "wwwAuthenticate": response.headers.get("www-authenticate"),
            }
        )


def http_client(token: str, log: HttpLog) -> Any:
    headers = {"Authorization": f"Bearer {token}"}
    if create_mcp_http_client is not None:
        client = create_mcp_http_client(headers=headers)
    else:  # pragma: no cover
        client = httpx.AsyncClient(headers=headers, timeout=30)
    client.event_hooks = {"request": [log.on_request], "response": [log]}
    return client


async def call(session: ClientSession, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """A tools/call; an exception is recorded (as a failure) instead of propagating."""
    try:
        return wire(await session.call_tool(tool, arguments))
    except Exception as e:  # noqa: BLE001 - any exception here is an interop failure
        check(False, f"{tool} {arguments} raised {describe(e)}")
        return {"exception": describe(e)}


def structured_todo(result: dict[str, Any]) -> dict[str, Any]:
    return (result.get("structuredContent") or {}).get("todo") or {}


async def full(session: ClientSession) -> None:
    listed = wire(await session.list_tools())
    tools = {t["name"]: t for t in listed.get("tools", [])}
    summary["tools"] = {
        name: {
            "inputSchemaType": (t.get("inputSchema") or {}).get("type"),
            "outputSchemaType": (t.get("outputSchema") or {}).get("type"),
            "requiredScopes": (t.get("_meta") or {}).get("requiredScopes"),
        }
        for name, t in tools.items()
    }
    check(set(tools) == set(TOOLS), f"tools/list gave {sorted(tools)}")
    for name, scopes in TOOLS.items():
        tool = tools.get(name, {})
        check((tool.get("inputSchema") or {}).get("type") == "object", f"{name}: no object inputSchema")
        check((tool.get("outputSchema") or {}).get("type") == "object", f"{name}: no object outputSchema")
        check(
            (tool.get("_meta") or {}).get("requiredScopes") == scopes,
            f"{name}: _meta.requiredScopes is {(tool.get('_meta') or {}).get('requiredScopes')}",
        )

    # The SDK validates every non-error result's structuredContent against the listed
    # outputSchema; a mismatch raises and is recorded by call().
    created = await call(session, "create-todo", {"title": "  written by the Python SDK  "})
    todo = structured_todo(created)
    todo_id = todo.get("id")
    summary["created"] = todo
    check(created.get("isError") is not True, f"create-todo failed: {text_of(created)}")
    check(todo.get("title") == "written by the Python SDK", f"create-todo title {todo.get('title')!r}")
    check(todo.get("completed") is False, "a new todo is open")
    check(isinstance(todo_id, int), f"create-todo id {todo_id!r}")
    # Backwards compatibility (MCP 2025-11-25, Tools > Structured Content): the serialized JSON
    # also comes as a text block.
    try:
        check(json.loads(text_of(created)) == created.get("structuredContent"), "text block != structuredContent")
    except ValueError:
        check(False, f"create-todo text block is not JSON: {text_of(created)!r}")

    listed_todos = await call(session, "get-todos", {})
    content = listed_todos.get("structuredContent") or {}
    summary["listed"] = content
    check(
        any(t.get("id") == todo_id and t.get("title") == todo.get("title") for t in content.get("todos", [])),
        "get-todos does not show the new todo",
    )
    check(content.get("count") == len(content.get("todos", [])), "get-todos count")

    toggled = structured_todo(await call(session, "toggle-todo", {"id": todo_id}))
    summary["toggled"] = toggled
    check(toggled.get("completed") is True, "toggle-todo did not complete the todo")

    updated = structured_todo(await call(session, "update-todo", {"id": todo_id, "title": "renamed by the Python SDK"}))
    summary["updated"] = updated
    check(updated.get("title") == "renamed by the Python SDK", f"update-todo title {updated.get('title')!r}")
    check(updated.get("completed") is True, "update-todo (title only) changed completion")

    deleted = await call(session, "delete-todo", {"id": todo_id})
    summary["deleted"] = structured_todo(deleted)
    check(deleted.get("isError") is not True, f"delete-todo failed: {text_of(deleted)}")
    check(structured_todo(deleted).get("id") == todo_id, "delete-todo returned another todo")

    # Tool errors are results with isError true (MCP 2025-11-25, Tools > Error Handling), not
    # JSON-RPC errors: the SDK must hand them back, not raise.
    again = await call(session, "delete-todo", {"id": todo_id})
    summary["deleteAgain"] = {"isError": again.get("isError"), "text": text_of(again), "exception": again.get("exception")}
    check(again.get("isError") is True, f"second delete-todo is not a tool error: {again}")

    wrong = await call(session, "toggle-todo", {"id": "abc"})
    summary["wrongType"] = {"isError": wrong.get("isError"), "text": text_of(wrong), "exception": wrong.get("exception")}
    check(wrong.get("isError") is True, f"toggle-todo with id 'abc' is not a tool error: {wrong}")

    after = (await call(session, "get-todos", {})).get("structuredContent") or {}
    summary["finalCount"] = after.get("count")
    check(after.get("count") == 0, f"todos left after delete: {after}")


async def read_only(session: ClientSession, log: HttpLog) -> None:
    listed = wire(await session.list_tools())
    summary["tools"] = sorted(t["name"] for t in listed.get("tools", []))
    read = await call(session, "get-todos", {})
    summary["getTodos"] = {"isError": read.get("isError"), "count": (read.get("structuredContent") or {}).get("count")}
    check(read.get("isError") is not True, f"get-todos with mcp:tools:read failed: {text_of(read)}")

    before = len(log.entries)
    refused: dict[str, Any] = {}
    try:
        result = wire(await session.call_tool("create-todo", {"title": "must not exist"}))
        refused["result"] = result
        check(False, f"create-todo without mcp:tools:manage returned a result: {result}")
    except Exception as e:  # noqa: BLE001 - the SDK's way of reporting an HTTP error
        refused["exception"] = type(e).__name__
        refused["message"] = str(e)
        code = getattr(getattr(e, "error", None), "code", None)
        refused["jsonRpcCode"] = code
    posts = [entry for entry in log.entries[before:] if entry["method"] == "POST"]
    refused["http"] = posts
    summary["createTodo"] = refused
    check("exception" in refused, "create-todo without mcp:tools:manage did not raise")
    check([p["status"] for p in posts] == [403], f"create-todo answered {posts}")

    # The session survives a refused call.
    again = await call(session, "get-todos", {})
    summary["afterRefusal"] = {"isError": again.get("isError")}
    check(again.get("isError") is not True, "get-todos after the refusal failed")


async def tls_checks(url: str) -> None:
    """The endpoint is https and trusted only through the CA the environment names: requests
    (REQUESTS_CA_BUNDLE) fetches the protected-resource metadata (RFC 9728, path-suffixed form);
    requests with certifi's roots and httpx2 with the system's roots are refused."""
    parts = urlsplit(url)
    tls: dict[str, Any] = {"scheme": parts.scheme}
    summary["tls"] = tls
    if not check(parts.scheme == "https", f"MCP_URL is not https: {url}"):
        return
    metadata_url = f"https://{parts.netloc}/.well-known/oauth-protected-resource{parts.path}"
    response = requests.get(metadata_url, timeout=30)
    tls["requestsStatus"] = response.status_code
    tls["metadataResource"] = response.json().get("resource")
    check(response.status_code == 200, f"requests got {response.status_code} for {metadata_url}")
    check(tls["metadataResource"] == url, f"metadata resource {tls['metadataResource']!r}")

    with requests.Session() as untrusting:
        untrusting.trust_env = False  # REQUESTS_CA_BUNDLE ignored: certifi's roots only
        try:
            untrusting.get(metadata_url, timeout=30)
            tls["requestsWithoutCa"] = "accepted"
        except requests.exceptions.SSLError:
            tls["requestsWithoutCa"] = "SSLError"
    check(tls["requestsWithoutCa"] == "SSLError", "requests trusted the server without the CA")

    async with httpx.AsyncClient(trust_env=False, timeout=30) as untrusting:  # SSL_CERT_FILE ignored
        try:
            await untrusting.get(metadata_url)
            tls["httpxWithoutCa"] = "accepted"
        except httpx.ConnectError as e:
            tls["httpxWithoutCa"] = type(e).__name__
            tls["httpxWithoutCaReason"] = str(e)
    check(
        "CERTIFICATE_VERIFY_FAILED" in tls.get("httpxWithoutCaReason", ""),
        f"httpx2 without the CA: {tls.get('httpxWithoutCa')} {tls.get('httpxWithoutCaReason')}",
    )


async def main() -> None:
    url = os.environ["MCP_URL"]
    token = os.environ["MCP_TOKEN"]
    scenario = os.environ.get("MCP_SCENARIO", "full")
    handler = SdkWarnings(level=logging.WARNING)
    logging.getLogger().addHandler(handler)
    summary["sdk"] = sdk_version()
    summary["scenario"] = scenario
    await tls_checks(url)
    log = HttpLog()
    async with http_client(token, log) as client:
        async with streamable_http_client(url, http_client=client) as streams:
            read_stream, write_stream = streams[0], streams[1]
            async with ClientSession(read_stream, write_stream) as session:
                init = wire(await session.initialize())
                summary["protocolVersion"] = init.get("protocolVersion")
                summary["serverInfo"] = init.get("serverInfo")
                summary["toolsCapability"] = "tools" in init.get("capabilities", {})
                check(init.get("protocolVersion") == "2025-11-25", f"negotiated {init.get('protocolVersion')}")
                if scenario == "full":
                    await full(session)
                elif scenario == "read-only":
                    await read_only(session, log)
                else:
                    check(False, f"unknown scenario {scenario!r}")
    statuses = sorted({(e["method"], e["status"]) for e in log.entries})
    summary["httpStatuses"] = [f"{method} {status}" for method, status in statuses]
    summary["protocolVersionHeaders"] = sorted(log.protocol_headers)


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), timeout=90))
    except BaseException as e:  # noqa: BLE001 - report, then fail
        summary["failures"].append(f"run aborted: {describe(e)}")
        print(json.dumps(summary), flush=True)
        sys.exit(1)
    print(json.dumps(summary), flush=True)
