"""The model-api lab's prediction service: FastAPI serving an ONNX model with onnxruntime.

    GET  /healthz   200 while the process serves HTTP (liveness)
    GET  /ready     200 once the model is loaded, 503 before (readiness)
    POST /predict   {"inputs": [[x0, x1, x2, x3], ...]}
                 -> {"outputs": [[y0, y1], ...], "model_version": "1"}

MODEL_PATH (default /opt/model-api/model.onnx) is the model; the model is loaded in the
background after start-up, so /healthz answers at once and /ready only once predictions
can be made (LOAD_DELAY_SECONDS, default 0, delays that, to watch a readinessProbe work).
Run: uvicorn app:app --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

MODEL_PATH = os.environ.get("MODEL_PATH", "/opt/model-api/model.onnx")
LOAD_DELAY_SECONDS = float(os.environ.get("LOAD_DELAY_SECONDS", "0"))
FEATURES = 4
MAX_BATCH = 1024


class Model:
    """The loaded model, or None until it is."""

    def __init__(self) -> None:
        self.session: ort.InferenceSession | None = None
        self.version = "unknown"
        self.error = ""
        self.lock = threading.Lock()  # onnxruntime's run() is thread-safe; this guards load

    def load(self) -> None:
        try:
            if LOAD_DELAY_SECONDS > 0:
                time.sleep(LOAD_DELAY_SECONDS)
            options = ort.SessionOptions()
            # One thread per request: the server's concurrency comes from its requests.
            options.intra_op_num_threads = 1
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(
                MODEL_PATH, sess_options=options, providers=["CPUExecutionProvider"]
            )
            meta = session.get_modelmeta().custom_metadata_map
            with self.lock:
                self.version = meta.get("model_version", "unknown")
                self.session = session
        except Exception as exc:  # reported by /ready; the process keeps serving /healthz
            self.error = f"{type(exc).__name__}: {exc}"


model = Model()


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    loading = asyncio.get_running_loop().run_in_executor(None, model.load)
    yield
    await loading


app = FastAPI(title="model-api", lifespan=lifespan)


class PredictRequest(BaseModel):
    inputs: Annotated[
        list[Annotated[list[float], Field(min_length=FEATURES, max_length=FEATURES)]],
        Field(min_length=1, max_length=MAX_BATCH),
    ]


class PredictResponse(BaseModel):
    outputs: list[list[float]]
    model_version: str


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/ready")
def ready() -> JSONResponse:
    if model.session is None:
        reason = model.error or "the model is loading"
        return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready", "model_version": model.version})


@app.post("/predict")
def predict(request: PredictRequest) -> PredictResponse:
    # A plain def: FastAPI runs it in its thread pool, so inference never blocks the loop.
    session = model.session
    if session is None:
        raise HTTPException(status_code=503, detail="the model is not loaded yet")
    x = np.asarray(request.inputs, dtype=np.float32)
    (y,) = session.run(["output"], {"input": x})
    return PredictResponse(outputs=y.tolist(), model_version=model.version)
