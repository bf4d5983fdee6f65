"""Run code on a kernel of a single-user server, through its REST and websocket API.

The same path JupyterLab uses: POST /api/kernels, then Jupyter messages over
/api/kernels/<id>/channels. Outputs come back as nbformat-style dicts.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import requests


class KernelClient:
    def __init__(self, server_url: str, token: str, kernel_name: str):
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.kernel_name = kernel_name
        self.kernel_id: str | None = None
        self._ws = None
        self.session = uuid.uuid4().hex

    def _headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    async def start(self, timeout: float = 120) -> "KernelClient":
        r = requests.post(f"{self.server_url}/api/kernels", json={"name": self.kernel_name},
                          headers=self._headers(), timeout=timeout)
        r.raise_for_status()
        self.kernel_id = r.json()["id"]
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        ws_url = self.server_url.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels"
        # Generous: a loaded 2-core machine takes a while to answer the upgrade.
        self._ws = await websocket_connect(HTTPRequest(ws_url, headers=self._headers(), connect_timeout=120,
                                                       request_timeout=120))
        return self

    async def execute(self, code: str, timeout: float = 180) -> list[dict]:
        """Run CODE; return its outputs. Raises on a kernel error."""
        msg_id = uuid.uuid4().hex
        msg = {
            "header": {"msg_id": msg_id, "username": "test", "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }
        await self._ws.write_message(json.dumps(msg))
        outputs: list[dict] = []
        done_iopub = done_shell = False
        error = None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (done_iopub and done_shell):
            raw = await asyncio.wait_for(self._ws.read_message(), max(0.1, deadline - loop.time()))
            if raw is None:
                raise RuntimeError("kernel websocket closed")
            if isinstance(raw, bytes):
                continue  # messages with binary buffers (widget state), not outputs
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                done_iopub = True
            elif kind == "execute_reply":
                done_shell = True
            elif kind == "stream":
                outputs.append({"output_type": "stream", "name": content["name"], "text": content["text"]})
            elif kind in ("display_data", "execute_result"):
                outputs.append({"output_type": kind, "data": content["data"]})
            elif kind == "error":
                error = content
                outputs.append({"output_type": "error", **content})
        if error is not None:
            raise RuntimeError(f"{error['ename']}: {error['evalue']}\n" + "\n".join(error.get("traceback", [])))
        return outputs

    async def run_notebook(self, nb) -> list[list[dict]]:
        """Execute every code cell of an nbformat notebook; outputs per cell."""
        results = []
        for cell in nb.cells:
            if cell.cell_type == "code":
                results.append(await self.execute(cell.source))
        return results

    async def shutdown(self) -> None:
        if self._ws is not None:
            self._ws.close()
        if self.kernel_id:
            requests.delete(f"{self.server_url}/api/kernels/{self.kernel_id}",
                            headers=self._headers(), timeout=30)
