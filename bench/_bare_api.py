"""The floor for bench_api: a bare FastAPI endpoint answering POST /run with the same JSON shape.

Same framework, same server (uvicorn, one process, no access log), same request validation
(a pydantic body), no database: what the harness's own work is measured against.
Run: ``python bench/_bare_api.py PORT``.
"""

from __future__ import annotations

import itertools
import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

app = FastAPI()
_ids = itertools.count()


class RunRequest(BaseModel):
    task: str
    model: str | None = None
    tools: list[str] | None = None


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/harness/run", status_code=202)
def run(body: RunRequest) -> JSONResponse:
    run_id = f"run_{next(_ids):026d}"
    accepted = {
        "run_id": run_id,
        "status": "PENDING",
        "model": body.model or "gpt-4o-mini",
        "tools": body.tools or ["read_file"],
        "links": {"self": f"/api/harness/runs/{run_id}"},
    }
    return JSONResponse(accepted, status_code=202, headers={"Location": accepted["links"]["self"]})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_config=None, access_log=False)
