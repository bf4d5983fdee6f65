"""A loopback TCP proxy that delays the server's answers, for tests and benchmarks.

``DelayProxy`` listens on ``127.0.0.1:<free port>`` and forwards every
connection to one fixed target on loopback. Bytes from the client go to the
server at once; every chunk the server sends back is handed to the client
``delay`` seconds after it arrived (the value of ``delay`` when the chunk
arrived; change it at any time). Chunks keep their order and the delays do
not add up: a stream of chunks is shifted by ``delay``, not stretched.

A restart (stop, start) listens on the same port again.

It runs its own asyncio loop in a daemon thread, so plain synchronous code
can use it::

    with DelayProxy("127.0.0.1", slapd.port, delay=0.2) as proxy:
        uri = f"ldap://127.0.0.1:{proxy.port}"
        proxy.delay = 0.5
"""

from __future__ import annotations

import asyncio
import threading
import time

from slicerhub.devenv.daemon import is_loopback

_EOF = object()


class DelayProxy:
    """Forward ``127.0.0.1:port`` to ``target_host:target_port``, delaying replies."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        delay: float = 0.0,
        listen_host: str = "127.0.0.1",
        chunk_size: int = 65536,
    ) -> None:
        if not is_loopback(target_host):
            raise ValueError(f"DelayProxy only forwards to loopback, not {target_host!r}")
        if not is_loopback(listen_host):
            raise ValueError(f"DelayProxy only listens on loopback, not {listen_host!r}")
        self.target_host = target_host
        self.target_port = int(target_port)
        self.listen_host = "127.0.0.1" if listen_host == "localhost" else listen_host
        self.delay = float(delay)
        self.chunk_size = chunk_size
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # -- public ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout: float = 10) -> None:
        if self.running:
            return
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="DelayProxy", daemon=True)
        self._thread.start()
        if not ready.wait(timeout) or self._server is None:
            self.stop()
            raise RuntimeError("DelayProxy did not start")

    def stop(self, timeout: float = 10) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if thread.is_alive():
            fut = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
            try:
                fut.result(timeout)
            except Exception:
                pass
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = self._server = None

    def __enter__(self) -> "DelayProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return (
            f"<DelayProxy {self.listen_host}:{self.port} -> "
            f"{self.target_host}:{self.target_port} delay={self.delay}s>"
        )

    # -- loop thread -------------------------------------------------------

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._handle, self.listen_host, self.port or 0)
            )
            self.port = self._server.sockets[0].getsockname()[1]
        except Exception:
            ready.set()
            return
        ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self._writers.add(client_w)
        try:
            server_r, server_w = await asyncio.open_connection(self.target_host, self.target_port)
        except OSError:
            client_w.transport.abort()
            self._writers.discard(client_w)
            return
        self._writers.add(server_w)
        queue: asyncio.Queue = asyncio.Queue()
        up = self._spawn(self._pump_up(client_r, server_w))
        down_read = self._spawn(self._read_down(server_r, queue))
        down_write = self._spawn(self._write_down(queue, client_w))
        try:
            await asyncio.wait({up, down_write}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down_read, down_write):
                task.cancel()
            for writer in (client_w, server_w):
                writer.transport.abort()
                self._writers.discard(writer)

    async def _pump_up(self, client_r: asyncio.StreamReader, server_w: asyncio.StreamWriter) -> None:
        """Client -> server, no delay. Ends when the client closes."""
        while True:
            data = await client_r.read(self.chunk_size)
            if not data:
                # Half-close towards the server; replies may still be on their way.
                if server_w.can_write_eof():
                    server_w.write_eof()
                await asyncio.Event().wait()  # let the down direction finish
            server_w.write(data)
            await server_w.drain()

    async def _read_down(self, server_r: asyncio.StreamReader, queue: asyncio.Queue) -> None:
        """Server -> queue, stamping each chunk with when it may go on."""
        while True:
            try:
                data = await server_r.read(self.chunk_size)
            except OSError:
                data = b""
            due = time.monotonic() + max(0.0, self.delay)
            if not data:
                await queue.put((due, _EOF))
                return
            await queue.put((due, data))

    async def _write_down(self, queue: asyncio.Queue, client_w: asyncio.StreamWriter) -> None:
        """Queue -> client, each chunk at its due time, in order."""
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is _EOF:
                if client_w.can_write_eof():
                    client_w.write_eof()
                await client_w.drain()
                return
            client_w.write(data)
            await client_w.drain()
