#!/usr/bin/env python3
"""A small wsconnector client in Python (asyncio + the `websockets` package).

It speaks the documented JSON protocol (docs/protocol.md) directly, as a fat
client (a desktop program, no browser) does:

- connect to ws://127.0.0.1:PORT/ (or wss:// with a CA to trust) and read the
  hello, which carries the resume token;
- every request carries a `requestId`; the reply with the same id resolves it,
  or the request fails after a timeout;
- events (`ContextChanged`, ...) arrive at any time and go to a callback;
- after a lost connection it reconnects with back-off and sends one `resume`
  request that restores registrations and subscriptions and replays what was
  missed (without the client's own writes);
- `close()` ends the session with a normal websocket close.

Two demo roles show it working (see examples/README.md):

  toolbar  registers in VOICE as "toolbar", subscribes to every variable,
           publishes a ringing call (GEN_T2P, ANI, VIP, NOTE with their JSON
           types) and waits until the CRM answers (GEN_P2T).
  crm      registers as "crm", subscribes to every variable, prints each
           change, and answers a ringing call with GEN_P2T=RqAnswer.

    python3 wsconnector_client.py --role crm --url ws://127.0.0.1:8443/
    python3 wsconnector_client.py --role toolbar --url ws://127.0.0.1:8443/

Copy the `Connector` class; the rest is the demo.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import ssl
import sys
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# How long one request may wait for its reply before it fails.
REQUEST_TIMEOUT_S = 10.0
# Reconnect back-off: first delay, growth factor, ceiling (plus jitter).
BACKOFF_FIRST_S = 0.2
BACKOFF_FACTOR = 2.0
BACKOFF_MAX_S = 5.0


class RequestFailed(Exception):
    """The daemon answered FAILURE; `code` is the stable errorCode (protocol §5)."""

    def __init__(self, action: str, code: str, message: str) -> None:
        super().__init__(f"{action} failed: {code}: {message}")
        self.code = code


class ConnectionLost(Exception):
    """The connection dropped before the reply arrived; the request may or may
    not have been applied (resume tells what happened meanwhile)."""


@dataclass
class _EnvState:
    """What this client must restore in one environment after a reconnect."""

    client_name: str
    # variable name (or "*") -> wants the whole environment (`Values`) with events
    subscriptions: dict[str, bool] = field(default_factory=dict)
    # the highest (epoch, seq) seen in events and replies; None before any
    epoch: int | None = None
    seq: int | None = None

    def saw(self, epoch: Any, seq: Any) -> None:
        """Remembers a position; a new epoch (daemon restart) replaces the old one."""
        if not isinstance(epoch, int) or not isinstance(seq, int):
            return
        if epoch != self.epoch or self.seq is None or seq > self.seq:
            self.epoch, self.seq = epoch, seq


EventHandler = Callable[[dict], Optional[Awaitable[None]]]
ResyncHandler = Callable[[str, dict], Optional[Awaitable[None]]]


class Connector:
    """One logical session with wsconnector that survives reconnects."""

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        on_event: EventHandler | None = None,
        on_resync: ResyncHandler | None = None,
        request_timeout: float = REQUEST_TIMEOUT_S,
    ) -> None:
        self.url = url
        self.ssl_context = ssl_context
        self.on_event = on_event
        # Called with (environment, values) when resume answers with a
        # snapshot (daemon restarted or history gone): replace your copy.
        self.on_resync = on_resync
        self.request_timeout = request_timeout
        self.hello: dict = {}
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}
        self._envs: dict[str, _EnvState] = {}
        self._reader: asyncio.Task | None = None
        # Set while the socket is usable for application requests: cleared
        # during a reconnect until `resume` has been answered, so that resume
        # is the first request on the new connection.
        self._ready = asyncio.Event()
        self._closing = False

    # ----- connection ------------------------------------------------------

    async def connect(self) -> dict:
        """Opens the websocket, reads the hello and starts the reader task."""
        await self._open()
        self._ready.set()
        self._reader = asyncio.create_task(self._read_loop())
        return self.hello

    async def _open(self) -> None:
        # A native client sends no Origin header (websockets sends none by
        # default); the daemon then only accepts connections of its own OS user.
        # The daemon pings idle connections; websockets answers pings itself.
        ssl_arg = self.ssl_context if self.url.startswith("wss:") else None
        ws = await connect(self.url, ssl=ssl_arg, open_timeout=self.request_timeout)
        hello = json.loads(
            await asyncio.wait_for(ws.recv(), timeout=self.request_timeout)
        )
        if hello.get("type") != "hello" or hello.get("protocol") != 1:
            await ws.close()
            raise RuntimeError(f"not a wsconnector protocol 1 hello: {hello}")
        self._ws, self.hello = ws, hello

    async def close(self) -> None:
        """Normal close (1000). Registrations end; the data stays in the daemon."""
        self._closing = True
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader

    async def drop_connection_for_demo(self) -> None:
        """Kills the TCP connection without a close frame, as a network or
        sleep/resume problem would, to show reconnect + resume."""
        # Application requests wait from now on until resume has been answered.
        self._ready.clear()
        if self._ws is not None:
            self._ws.transport.abort()

    async def _read_loop(self) -> None:
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for text in ws:
                    await self._dispatch(json.loads(text))
            except ConnectionClosed:
                pass
            self._fail_pending(ConnectionLost("connection closed"))
            if self._closing:
                return
            self._ready.clear()
            await self._reconnect()

    async def _reconnect(self) -> None:
        """Reconnects with exponential back-off and jitter, then resumes."""
        old_token = self.hello.get("resumeToken")
        for attempt in itertools.count():
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * BACKOFF_FACTOR**attempt)
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            try:
                await self._open()
                break
            except Exception as err:  # refused (InvalidStatus), unreachable, no hello...
                print(f"reconnect attempt {attempt + 1} failed: {err}", file=sys.stderr)
        # The resume reply is read by the read loop, so send it from a task.
        asyncio.create_task(self._resume(old_token))

    async def _resume(self, token: str | None) -> None:
        envs = [
            {
                "environment": name,
                "clientName": st.client_name,
                **({"epoch": st.epoch, "seq": st.seq} if st.epoch is not None else {}),
                "subscriptions": [
                    {"name": n, "values": v} for n, v in st.subscriptions.items()
                ],
            }
            for name, st in self._envs.items()
        ]
        try:
            reply = await self._send({"action": "resume", "token": token, "environments": envs})
        except (RequestFailed, ConnectionLost, asyncio.TimeoutError) as err:
            # The read loop reconnects again when the socket dropped; otherwise
            # carry on (registrations were not restored: requests will say so).
            print(f"resume failed: {err}", file=sys.stderr)
            self._ready.set()
            return
        data = reply.get("data", {})
        for entry in data.get("environments", []):
            env = entry["environment"]
            st = self._envs[env]
            if entry.get("mode") == "replay":
                # Missed events, in order, without our own writes.
                for event in entry.get("events", []):
                    await self._dispatch(event)
            else:
                if self.on_resync is not None:
                    await _maybe_await(self.on_resync(env, entry.get("values", {})))
            st.saw(entry.get("epoch"), entry.get("seq"))
        print(
            f"RESUMED resumed={json.dumps(data.get('resumed'))} modes="
            + ",".join(e.get("mode", "?") for e in data.get("environments", [])),
            flush=True,
        )
        self._ready.set()

    async def _dispatch(self, msg: dict) -> None:
        kind = msg.get("type")
        if kind == "reply":
            fut = self._pending.pop(str(msg.get("requestId")), None)
            if fut is not None and not fut.done():
                fut.set_result(msg)
        elif kind == "event":
            st = self._envs.get(msg.get("EnvironmentName", ""))
            if st is not None:
                st.saw(msg.get("epoch"), msg.get("seq"))
            if self.on_event is not None:
                try:
                    await _maybe_await(self.on_event(msg))
                except Exception as err:  # the application's bug must not stop the reader
                    print(f"event handler failed: {err!r}", file=sys.stderr)

    def _fail_pending(self, err: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()

    # ----- requests --------------------------------------------------------

    async def request(self, action: str, **fields: Any) -> dict:
        """Sends one request and returns its SUCCESS reply (RequestFailed on
        FAILURE, asyncio.TimeoutError after the request timeout)."""
        await asyncio.wait_for(self._ready.wait(), timeout=self.request_timeout)
        return await self._send({"action": action, **fields})

    async def _send(self, req: dict) -> dict:
        request_id = str(next(self._ids))
        fut = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        try:
            assert self._ws is not None
            await self._ws.send(json.dumps({**req, "requestId": request_id}))
            reply = await asyncio.wait_for(fut, timeout=self.request_timeout)
        except ConnectionClosed as err:
            raise ConnectionLost(str(err)) from err
        finally:
            self._pending.pop(request_id, None)
        env = self._envs.get(req.get("environment", ""))
        if env is not None:
            env.saw(reply.get("epoch"), reply.get("seq"))
        if reply.get("result") != "SUCCESS":
            raise RequestFailed(req["action"], reply.get("errorCode", "?"), reply.get("errorMessage", ""))
        return reply

    async def create_environment(self, env: str, client_name: str) -> dict:
        """Registers in `env` (creating it); needed before any other request about it."""
        reply = await self.request("createEnvironment", environment=env, clientName=client_name)
        st = self._envs.setdefault(env, _EnvState(client_name))
        st.client_name = client_name
        st.saw(reply.get("epoch"), reply.get("seq"))
        return reply

    async def set_notifications_on(self, env: str, name: str = "*", values: bool = False) -> dict:
        """Subscribes to `name` (or "*": every variable) in `env`."""
        reply = await self.request("setNotificationsOn", environment=env, name=name, values=values)
        self._envs[env].subscriptions[name] = values
        return reply

    async def set_context_variable(self, env: str, name: str, value: Any) -> dict:
        """Sets one variable; the value keeps its JSON type (str, int, float, bool, None)."""
        return await self.request("setContextVariable", environment=env, name=name, value=value)

    async def set_context_json(self, env: str, values: dict[str, Any], clear: bool = False) -> dict:
        """Sets several variables atomically, one ContextChanged event each, in order."""
        data = [{name: value} for name, value in values.items()]
        return await self.request("setContextJSON", environment=env, data=data, clearData=clear)

    async def get_environment(self, env: str) -> dict:
        """Reads the environment: {name: value}."""
        return (await self.request("getEnvironment", environment=env)).get("data", {})


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


# ----- the demo roles ------------------------------------------------------

# What the toolbar publishes for a ringing call: one value of each JSON type.
RINGING = {"GEN_T2P": "EvRinging", "ANI": 3225551234, "VIP": True, "NOTE": None}


def _compact(value: Any) -> str:
    """JSON without spaces, keys sorted: the same text in every example."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _show(msg: dict) -> None:
    """Prints an event in a stable form: EVENT NAME=<value as JSON>."""
    if msg.get("event") == "ContextChanged":
        print(f"EVENT {msg['VarChanged']}={_compact(msg['ValueChanged'])}", flush=True)
    else:
        print(f"EVENT {msg.get('event')} {msg.get('EnvironmentName')}", flush=True)


async def run_toolbar(args: argparse.Namespace, ssl_context: ssl.SSLContext | None) -> int:
    answered = asyncio.Event()

    def on_event(msg: dict) -> None:
        _show(msg)
        if msg.get("VarChanged") == "GEN_P2T" and msg.get("ValueChanged") == "RqAnswer":
            answered.set()

    conn = Connector(args.url, ssl_context=ssl_context, on_event=on_event,
                     on_resync=lambda env, values: print(f"RESYNC {env} {_compact(values)}"))
    hello = await conn.connect()
    print(f"HELLO user={hello['user']} native={json.dumps(hello['native'])}", flush=True)
    await conn.create_environment(args.env, "toolbar")
    # Every variable: the daemon never echoes this connection's own writes.
    await conn.set_notifications_on(args.env, "*")
    if args.simulate_drop:
        await conn.drop_connection_for_demo()
    reply = await conn.set_context_json(args.env, RINGING)
    print(f"PUBLISHED seq={reply['seq']}", flush=True)
    try:
        await asyncio.wait_for(answered.wait(), timeout=args.timeout)
    except asyncio.TimeoutError:
        print("TIMEOUT waiting for GEN_P2T=RqAnswer", flush=True)
        await conn.close()
        return 1
    await conn.close()
    print("DONE", flush=True)
    return 0


async def run_crm(args: argparse.Namespace, ssl_context: ssl.SSLContext | None) -> int:
    seen = 0
    enough = asyncio.Event()
    conn: Connector

    answers: list[asyncio.Task] = []

    async def on_event(msg: dict) -> None:
        nonlocal seen
        _show(msg)
        if msg.get("VarChanged") == "GEN_T2P" and msg.get("ValueChanged") == "EvRinging":
            # Not awaited here: its reply is read by the loop that calls us.
            answers.append(asyncio.create_task(answer()))
        seen += 1
        if seen >= args.count:
            enough.set()

    async def answer() -> None:
        await conn.set_context_variable(args.env, "GEN_P2T", "RqAnswer")
        print("ANSWERED", flush=True)

    conn = Connector(args.url, ssl_context=ssl_context, on_event=on_event)
    await conn.connect()
    await conn.create_environment(args.env, "crm")
    await conn.set_notifications_on(args.env, "*")
    print("READY", flush=True)
    try:
        await asyncio.wait_for(enough.wait(), timeout=args.timeout)
    except asyncio.TimeoutError:
        print(f"TIMEOUT after {seen} of {args.count} events", flush=True)
        await conn.close()
        return 1
    await asyncio.gather(*answers)
    # One more round trip: every event sent to us before this reply has
    # arrived by now, so an echo of our own GEN_P2T would have been printed.
    state = await conn.get_environment(args.env)
    print(f"STATE {_compact(state)}", flush=True)
    await conn.close()
    print("DONE", flush=True)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--role", choices=["toolbar", "crm"], required=True)
    p.add_argument("--url", default="ws://127.0.0.1:8443/", help="ws://... or wss://...")
    p.add_argument("--ca", help="PEM file of the CA to trust for wss:// (wsconnector-ca.pem)")
    p.add_argument("--env", default="VOICE")
    p.add_argument("--count", type=int, default=len(RINGING), help="crm: events to wait for")
    p.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the scenario")
    p.add_argument("--simulate-drop", action="store_true",
                   help="toolbar: drop the connection once, then reconnect and resume")
    args = p.parse_args()
    ssl_context = None
    if args.url.startswith("wss:"):
        # Trust the daemon's local CA when given, else the system trust store
        # (where `update-ca-certificates` puts wsconnector-ca.pem).
        ssl_context = ssl.create_default_context(cafile=args.ca)
    run = run_toolbar if args.role == "toolbar" else run_crm
    return asyncio.run(run(args, ssl_context))


if __name__ == "__main__":
    sys.exit(main())
