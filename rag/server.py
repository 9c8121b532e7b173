"""The HTTP face of the engine: a JSON API, and the browser UI mounted beside it.

Every failure a caller can cause comes back as a small JSON `{"error": ...}` with a 4xx status;
nothing a client sends can produce a traceback or reveal a server path.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import importlib.util
import json
import re
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    create_model,
)
from starlette.exceptions import HTTPException as StarletteHTTPException

from .answer import INVISIBLE, MAX_K, MAX_QUESTION_CHARS, Answer, ask, ask_many
from .answer import Request as Asked
from .errors import QuestionError, RagError
from .threads import named_pool
from .transcript import Transcript, Turn, parse_transcript

if TYPE_CHECKING:
    from .index import IndexSettings
    from .retrieve import Engine

MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024  # request headers, as h11 limits them while they arrive
MAX_UI_BODY = 1024 * 1024  # the UI sends its chat history back with every question
CONCURRENCY = 8
MAX_BATCH = 32  # questions answered in one go by the worker
# What `clean_question` keeps a question for, as the schema tells clients (it is checked there,
# with a clearer message than a pattern mismatch).
VISIBLE = rf"[^\s\x00-\x1f\x7f-\x9f{INVISIBLE}]"
REQUEST_TIMEOUT = 30.0  # seconds to send a whole request: a 1 MiB UI body on a slow link


def _mend(value: object) -> object:
    """Lone surrogates (valid as JSON escapes) become "?", as the library reads them."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    return value


def _whole(value: object) -> object:
    """A number with no fraction (`2.0`, as some JSON writers put 2) is that whole number, as
    JSON Schema's `integer` has it; `2.5`, `"2"` and `true` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Text = Annotated[StrictStr, BeforeValidator(_mend)]
# Characters as sent, as JSON Schema's `maxLength` and the library's limit count them.
Question = Annotated[Text, StringConstraints(max_length=MAX_QUESTION_CHARS)]
Count = Annotated[StrictInt, BeforeValidator(_whole)]


class AskRequest(BaseModel):
    """A question for `POST /api/ask`."""

    model_config = ConfigDict(extra="ignore")
    question: Question = Field(min_length=1, examples=["Que dit Blinken du Sahel ?"],
                               description="at least one visible character: spaces, control "
                                           "and invisible characters alone make an empty "
                                           f"question; at most {MAX_QUESTION_CHARS} "
                                           "characters",
                               json_schema_extra={"pattern": VISIBLE})
    k: Count = Field(3, ge=1, le=MAX_K, description="the most citations to give")
    previous: Question | None = Field(
        None,
        description="the conversation's previous question, for an elliptic follow-up")


def ask_request(sources: list[str]) -> type[AskRequest]:
    """`AskRequest` with `sources`: which of these transcripts a question may cite."""
    if not sources:
        return AskRequest
    names = Literal[tuple(sources)]
    return create_model(
        "AskRequest", __base__=AskRequest, __doc__=AskRequest.__doc__,
        sources=(list[names] | None, Field(
            None, min_length=1,
            description="only these transcripts, as citations name them (`source`); "
                        "leave it out to search them all")))


def batch_request(asked: type[AskRequest]) -> type[BaseModel]:
    """The body of `POST /api/batch`: up to MAX_BATCH questions, each as `/api/ask` takes it,
    except that a question with no visible character is not refused with the whole batch: it
    gets its own error in its place, so its schema has no `pattern`."""
    item = create_model(
        "BatchQuestion", __base__=asked, __doc__="One question of a batch, as `/api/ask` takes it.",
        question=(Question, Field(
            min_length=1,
            description="a question; one with no visible character (spaces, control and "
                        "invisible characters alone) gets its own error in its place among "
                        "the answers")))
    return create_model(
        "BatchRequest", __config__=ConfigDict(extra="ignore"),
        __doc__="Several questions for `POST /api/batch`, answered together.",
        questions=(list[item], Field(min_length=1, max_length=MAX_BATCH,
                                     description=f"from 1 to {MAX_BATCH} questions")))


class CitationOut(BaseModel):
    n: int
    text: str = Field(description="verbatim: the transcript's text from `start` to `end`")
    start: int
    end: int
    source: str
    speaker: str
    question: str = Field(description="the interviewer question this passage answers")
    date: str | None
    outlet: str | None
    score: float
    answer: int = Field(description="the answer's number in its transcript, from 1")


class AnswerOut(BaseModel):
    question: str
    abstained: bool
    answer: str
    citations: list[CitationOut]
    searched: str
    closest: list[CitationOut] = Field(description="nearest passages, offered when abstaining")
    confidence: float | None = Field(
        ge=0, le=1, description="how likely the first citation (or closest passage) comes from "
        "the answer asked about: a probability calibrated on questions the engine was not "
        "fitted on (docs/quality.md, Confidence); null when the question has no words to search "
        "or nothing is indexed")


class ErrorOut(BaseModel):
    error: str


class BatchOut(BaseModel):
    answers: list[AnswerOut | ErrorOut] = Field(
        description="one per question, in order: its answer, or the error that question alone "
                    "got")


class HealthOut(BaseModel):
    status: str
    manifest: dict
    models: list[str]


class TurnOut(BaseModel):
    answer: int = Field(description="the answer's number, from 1, as citations give it")
    question: str
    question_start: int
    question_end: int
    speaker: str
    start: int = Field(description="where the answer's text starts in `text`")
    end: int


class TranscriptInfoOut(BaseModel):
    source: str = Field(description="as citations name it")
    date: str | None
    outlet: str | None
    sha256: str
    chars: int = Field(description="the text's length in characters (offsets run to it)")
    answers: int


class TranscriptsOut(BaseModel):
    transcripts: list[TranscriptInfoOut]


class TranscriptOut(TranscriptInfoOut):
    text: str = Field(description="the whole transcript: a citation's text is "
                                  "`text[start:end]`")
    turns: list[TurnOut]


@dataclass
class Job:
    """One question waiting for the worker, and where its answer (or error) goes."""

    question: str
    k: int = 3
    previous: str | None = None
    sources: tuple[str, ...] | None = None
    future: Future = field(default_factory=Future)


Batch = Callable[["Engine", list[Job]], list["Answer | Exception"]]


def answer_each(engine: Engine, jobs: list[Job]) -> list[Answer | Exception]:
    """One `ask` per job; a failure is that job's alone."""
    out: list[Answer | Exception] = []
    for job in jobs:
        try:
            out.append(ask(engine, job.question, k=job.k, previous=job.previous,
                           sources=job.sources))
        except Exception as exc:  # handed to the job's caller
            out.append(exc)
    return out


def answer_together(engine: Engine, jobs: list[Job]) -> list[Answer | Exception]:
    """All waiting jobs through `ask_many`, which embeds their questions in one batch.

    If the batch itself fails, the jobs are asked one by one so that a bad question fails alone.
    """
    if len(jobs) < 2:
        return answer_each(engine, jobs)
    try:
        return list(ask_many(engine, [Asked(j.question, j.k, j.previous, j.sources)
                                      for j in jobs]))
    except Exception:  # retried one by one
        return answer_each(engine, jobs)


class LockedAsk:
    """`ask` on one dedicated thread, which takes every question waiting at once.

    The embedding models are not safe to call from several threads, and every thread that has
    run them keeps its own buffers for good, so calls from the server's many worker threads
    would grow its memory. Under load, questions queue while one is answered; the worker then
    takes them all (up to MAX_BATCH) as one batch, embedded together by `ask_many`.
    """

    def __init__(self, engine: Engine, batch: Batch | None = None):
        self.engine = engine
        self.batch = batch or answer_together
        self._pending: list[Job] = []
        self._lock = threading.Lock()
        self._worker = named_pool(1, "rag-ask")

    def submit(self, question: str, *, k: int = 3, previous: str | None = None,
               sources: Iterable[str] | None = None) -> Future:
        """Queue a question; the future holds its Answer or the error it raised."""
        job = Job(question, k, previous, None if sources is None else tuple(sources))
        with self._lock:
            self._pending.append(job)
        self._worker.submit(self._drain)
        return job.future

    def __call__(self, question: str, *, k: int = 3, previous: str | None = None,
                 sources: Iterable[str] | None = None) -> Answer:
        return self.submit(question, k=k, previous=previous, sources=sources).result()

    async def answer(self, question: str, *, k: int = 3, previous: str | None = None,
                     sources: Iterable[str] | None = None) -> Answer:
        """The same, awaited: no thread waits while the worker answers."""
        return await asyncio.wrap_future(self.submit(question, k=k, previous=previous,
                                                     sources=sources))

    def _drain(self) -> None:
        with self._lock:
            jobs, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if not jobs:  # an earlier drain took them
            return
        try:
            outcomes = self.batch(self.engine, jobs)
        except Exception as exc:  # every job hears of it
            outcomes = [exc] * len(jobs)
        for job, outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)


def transcripts_of(engine: Engine) -> dict[str, Transcript]:
    """The indexed transcripts, parsed again for their turns (the index keeps only the text)."""
    return {name: parse_transcript(text, source=name)
            for name, text in engine.index.corpus.texts.items()}


def create_app(engine: Engine, *, transcripts: Mapping[str, Transcript] | None = None,
               root_path: str = "", cors_origins: Iterable[str] = (),
               ui: bool = True) -> FastAPI:
    """The FastAPI app: `/api/ask`, `/api/batch`, `/api/health`, the transcripts, and the
    Gradio UI at `/`.

    Args:
        root_path: the sub-path a proxy serves the app under, for the UI's own links (the
            ASGI server must be given it too, as `serve` does).
        cors_origins: origins that may call the API from a browser and embed the UI in a frame;
            none by default, so only the app's own pages can.
    """
    origins = [o.rstrip("/") for o in cors_origins]
    transcripts = dict(transcripts) if transcripts is not None else transcripts_of(engine)
    answer = LockedAsk(engine)
    # No /docs or /redoc: FastAPI's pages load their scripts and fonts from other hosts, which
    # the app's pages never do. The schema is at /openapi.json.
    app = FastAPI(title="Interview answers", version="1", docs_url=None, redoc_url=None,
                  description="Cited, verbatim answers from interview transcripts.")
    _add_errors(app)
    _add_routes(app, engine, answer, transcripts)
    # Added even with no origins: Gradio then leaves CORS to it, instead of letting other
    # localhost pages (or, under any other host name, every page) read the UI's routes.
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST"],
                       allow_headers=["Content-Type"])
    app.add_middleware(JsonPreflightRefusal)
    app.add_middleware(SecurityHeaders, frame_ancestors=origins)
    app.add_middleware(BodyLimit, api_limit=MAX_BODY, limit=MAX_UI_BODY)
    app.add_middleware(MergeSlashes)
    if ui:
        module = load_ui()  # first: it sets gradio's environment before gradio loads
        import gradio as gr

        demo = module.build_ui(engine, transcripts=transcripts, ask=answer,
                               concurrency_limit=CONCURRENCY)
        app = gr.mount_gradio_app(app, demo, path="/", root_path=root_path or None,
                                  ssr_mode=False, footer_links=["api"], show_error=False,
                                  **module.mount_options())
    return app


def _add_routes(app: FastAPI, engine: Engine, answer: LockedAsk,
                transcripts: Mapping[str, Transcript]) -> None:
    errors = {code: {"model": ErrorOut} for code in (400, 413, 422)}

    async def api_ask(body: AskRequest) -> dict:
        """Answer a question with verbatim quotes and their citations, or abstain."""
        try:
            found = await answer.answer(body.question, k=body.k, previous=body.previous,
                                        sources=getattr(body, "sources", None))
        except QuestionError as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)
        return found.to_dict()

    async def api_batch(body: BaseModel) -> dict:
        """Answer several questions at once, embedded together: fewer round trips for a
        portal. A question the engine refuses gets its own `{"error": ...}` in its place."""
        found = await asyncio.gather(*(
            answer.answer(q.question, k=q.k, previous=q.previous,
                          sources=getattr(q, "sources", None)) for q in body.questions),
            return_exceptions=True)
        for outcome in found:
            if isinstance(outcome, BaseException) and not isinstance(outcome, QuestionError):
                raise outcome
        return {"answers": [{"error": str(a)} if isinstance(a, QuestionError) else a.to_dict()
                            for a in found]}

    # The request names the indexed transcripts, so the schema lists what `sources` may hold.
    asked = ask_request(list(transcripts))
    api_ask.__annotations__["body"] = asked
    app.post("/api/ask", response_model=AnswerOut, responses=errors, tags=["api"])(api_ask)
    api_batch.__annotations__["body"] = batch_request(asked)
    app.post("/api/batch", response_model=BatchOut, responses=errors, tags=["api"])(api_batch)

    @app.get("/api/health", response_model=HealthOut, tags=["api"])
    async def api_health() -> dict:
        """Ready to answer: the index manifest and the models in use."""
        manifest = engine.index.manifest
        return {"status": "ready", "manifest": manifest,
                "models": [m.get("name", "") for m in manifest.get("models", [])]}

    @app.get("/api/transcripts", response_model=TranscriptsOut, tags=["api"])
    async def api_transcripts() -> dict:
        """The indexed transcripts, by the `source` their citations give."""
        return {"transcripts": [transcript_info(t) for t in transcripts.values()]}

    @app.get("/api/transcript", response_model=TranscriptOut,
             responses={404: {"model": ErrorOut}, 422: {"model": ErrorOut}}, tags=["api"])
    async def api_transcript(source: str) -> dict | JSONResponse:
        """One transcript's whole text and the spans of its questions and answers: a
        citation's offsets can be checked against it and read in context."""
        found = transcripts.get(source)
        if found is None:
            return JSONResponse({"error": "no such transcript; GET /api/transcripts lists "
                                          "them"}, status_code=404)
        return transcript_info(found) | {"text": found.text,
                                         "turns": [turn_out(t) for t in found.turns]}

    @app.head("/api/health", include_in_schema=False)
    async def api_health_head() -> dict:
        """For uptime monitors that check with HEAD: the same answer, without its body."""
        return await api_health()

    allowed: dict[str, set[str]] = {}
    for route in app.routes:
        if getattr(route, "path", "").startswith("/api/") and getattr(route, "methods", None):
            allowed.setdefault(route.path, set()).update(route.methods)
    # An ASGI app rather than a function, so that the route takes every method: the UI's
    # routes, mounted at `/`, would otherwise answer the others.
    fallback = ApiFallback({path: ", ".join(sorted(methods))
                            for path, methods in allowed.items()})
    app.add_route("/api/{rest:path}", fallback, include_in_schema=False)
    app.add_route("/api", fallback, include_in_schema=False)


@dataclass(frozen=True)
class ApiFallback:
    """Unknown API paths and methods get a JSON 404, or a 405 naming the methods allowed."""

    allowed: Mapping[str, str]

    async def __call__(self, scope, receive, send) -> None:
        methods = self.allowed.get("/api/" + scope.get("path_params", {}).get("rest", "-"))
        if methods:
            response = JSONResponse({"error": "method not allowed"}, status_code=405,
                                    headers={"Allow": methods})
        else:
            response = JSONResponse({"error": "not found"}, status_code=404)
        await response(scope, receive, send)


def transcript_info(transcript: Transcript) -> dict:
    """What a client needs to pick a transcript, without its (possibly long) text."""
    return {"source": transcript.source, "date": transcript.date, "outlet": transcript.outlet,
            "sha256": transcript.sha256, "chars": len(transcript.text),
            "answers": len(transcript.turns)}


def turn_out(turn: Turn) -> dict:
    """A turn under the names citations use (`answer` is its number)."""
    return {"answer": turn.number, "question": turn.question,
            "question_start": turn.question_start, "question_end": turn.question_end,
            "speaker": turn.speaker, "start": turn.start, "end": turn.end}


def _add_errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse({"error": "the body is not valid JSON"}, status_code=400)
        about_body = any(tuple(p.get("loc", ()))[:1] == ("body",) for p in problems)
        if about_body and not _is_json(request.headers.get("content-type", "")):
            # FastAPI reads no other body as JSON: say so, not that the object is malformed.
            return JSONResponse({"error": "send the body as JSON, with the header "
                                          "Content-Type: application/json"}, status_code=415)
        return JSONResponse({"error": "; ".join(_describe(p) for p in problems[:5])},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            # FastAPI's words when the body is not UTF-8, nests too deep to decode, or holds
            # a number too long for Python to read
            message = ("the body is not valid JSON in UTF-8, or it nests too deep or holds a "
                       "number of over 4,300 digits")
        return JSONResponse({"error": message}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        print(f"rag: internal error on {request.url.path}: {type(exc).__name__}", file=sys.stderr)
        return JSONResponse({"error": "internal error"}, status_code=500)


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _describe(problem: dict) -> str:
    """A validation problem in words, without echoing the input back."""
    where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body") or "body"
    kind = problem.get("type", "")
    if kind == "missing":
        return f"{where} is required"
    if kind in ("string_type", "int_type", "model_type", "model_attributes_type", "dict_type"):
        wanted = {"string_type": "text", "int_type": "a whole number"}.get(kind, "a JSON object")
        return f"{where} must be {wanted}"
    if kind == "string_too_short":
        return f"{where} is empty"
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"{where} must be from 1 to {MAX_K}"
    if kind == "literal_error":
        return f"{where} is not an indexed transcript (GET /api/transcripts lists them)"
    if kind == "list_type":
        return f"{where} must be a list"
    if kind == "too_short":
        hint = ": leave it out to search every transcript" if where.endswith("sources") else ""
        return f"{where} is empty{hint}"
    if kind == "too_long" and where == "questions":
        return f"{where} holds too many questions (the limit is {MAX_BATCH})"
    if kind == "too_long":
        return f"{where} is too long (the limit is {MAX_QUESTION_CHARS} characters)"
    return f"{where} is invalid"


class BodyLimit:
    """Refuse request bodies over the limit with 413, whether or not they announce a length:
    `api_limit` bytes under /api/, `limit` bytes elsewhere (the UI's own routes); and headers
    over MAX_HEAD with 431 (h11 refuses them only while they are still arriving, not when a
    whole request head comes in one read)."""

    def __init__(self, app, *, api_limit: int, limit: int):
        self.app = app
        self.api_limit = api_limit
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or []) > MAX_HEAD:
            return await _refuse(send, 431, f"the request headers are over "
                                            f"{MAX_HEAD // 1024} KiB")
        limit = self.api_limit if _is_api(scope) else self.limit
        headers = dict(scope.get("headers") or [])
        try:
            announced = int(headers.get(b"content-length", b"0"))
        except ValueError:
            announced = 0
        if announced > limit:
            return await _too_large(send, limit)
        body = bytearray()
        while True:  # read it all first: bodies here are small, and this bounds them
            message = await receive()
            if message["type"] != "http.request":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                return await _too_large(send, limit)
            if not message.get("more_body"):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def _is_api(scope) -> bool:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):]
    return path.startswith("/api/")


async def _too_large(send, limit: int) -> None:
    await _refuse(send, 413, f"the body is over {limit // 1024} KiB")


async def _refuse(send, status: int, message: str) -> None:
    response = JSONResponse({"error": message}, status_code=status)
    await send({"type": "http.response.start", "status": status,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


class JsonPreflightRefusal:
    """A refused CORS preflight as a JSON error, like every other refusal of the API, saying
    what to change. Beside Starlette's own `CORSMiddleware`, not a subclass: Gradio leaves CORS
    to the app only when it finds that exact class."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or ()) if scope["type"] == "http" else {}
        if (scope.get("method") != "OPTIONS" or b"origin" not in headers
                or b"access-control-request-method" not in headers):
            return await self.app(scope, receive, send)
        start: dict = {}

        async def as_json(message):
            nonlocal start
            if message["type"] == "http.response.start" and message["status"] == 400:
                start = message
                return
            if start and message["type"] == "http.response.body":
                # Starlette's body names what failed: "Disallowed CORS origin, method, headers".
                failed = message.get("body", b"").decode("latin-1")
                failed = failed.removeprefix("Disallowed CORS ").strip()
                body = json.dumps({"error": f"cross-origin request refused (not allowed: "
                                            f"{failed}); the origins that may call the API "
                                            "are set with --cors-origins"}).encode()
                kept = [(k, v) for k, v in start.get("headers", [])
                        if k.lower() not in (b"content-length", b"content-type")]
                await send({**start, "headers": kept + [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, as_json)


class MergeSlashes:
    """`//api/ask` is `/api/ask`, as most web servers read it, so that a client joining a base
    address ending in `/` with a path starting with one still reaches the API. Only API paths:
    the UI's routes are Gradio's, some of which carry a URL (`proxy=https://…`)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and "//" in scope["path"]:
            path = _SLASHES.sub("/", scope["path"])
            if path == "/api" or path.startswith("/api/"):
                raw = _SLASHES_RAW.sub(b"/", scope.get("raw_path") or path.encode("utf-8"))
                scope = {**scope, "path": path, "raw_path": raw}
        await self.app(scope, receive, send)


_SLASHES = re.compile(r"/{2,}")
_SLASHES_RAW = re.compile(rb"/{2,}")


class SecurityHeaders:
    """Only the app itself and the configured origins may show it in a frame."""

    def __init__(self, app, frame_ancestors: list[str]):
        self.app = app
        policy = " ".join(["frame-ancestors 'self'", *frame_ancestors])
        self.headers = [(b"content-security-policy", policy.encode("latin-1")),
                        (b"x-content-type-options", b"nosniff"),
                        (b"referrer-policy", b"same-origin")]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", [])
                        if k.lower() not in (b"x-frame-options", b"content-security-policy")]
                message = {**message, "headers": kept + self.headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def load_ui():
    """The `ui` module: importable when the project root is on the path, else read beside us."""
    try:
        import ui
    except ModuleNotFoundError as exc:
        if exc.name != "ui":
            raise
        path = Path(__file__).resolve().parents[1] / "ui.py"
        spec = importlib.util.spec_from_file_location("ui", path)
        if spec is None or not path.exists():
            raise RuntimeError("the browser UI (ui.py) is not installed") from None
        ui = importlib.util.module_from_spec(spec)
        sys.modules["ui"] = ui
        spec.loader.exec_module(ui)
    return ui


def _preload_ui() -> None:
    """Import the UI module and Gradio ahead of `create_app`; a failure shows up there."""
    try:
        load_ui()
        import gradio  # noqa: F401
    except Exception:  # create_app reports it
        pass


def serve(*, index_dir: str | Path = "index", root: str | Path | None = None,
          settings: IndexSettings | None = None, host: str = "127.0.0.1", port: int = 7860,
          root_path: str = "", cors_origins: Iterable[str] = (),
          cache_dir: str | Path | None = None,
          request_timeout: float = REQUEST_TIMEOUT) -> None:
    """Load (or rebuild) the index, then serve the API and UI until interrupted.

    `request_timeout`: seconds a client has to send a whole request (head and body) once it
    connects or once its last answer is sent, before the connection is closed.
    """
    import uvicorn

    from .engine import load_engine

    # The port first: one in use fails at once, not after the models have loaded.
    with listening_socket(host, port) as sock:
        port = sock.getsockname()[1]
        # Importing Gradio is most of the start; it runs while the engine loads.
        preload = threading.Thread(target=_preload_ui, name="rag-preload", daemon=True)
        preload.start()
        engine = load_engine(index_dir, root=root, settings=settings, rebuild=True,
                             cache_dir=cache_dir,
                             on_rebuild=lambda why: print(f"rag: rebuilding the index: {why}",
                                                          file=sys.stderr, flush=True))
        preload.join()
        # Answering multiplies small matrices; OpenBLAS's second thread would only spin beside
        # the model runs, an eighth of a core under load (bench/load.py, "other"), so BLAS keeps
        # one. The multilingual encoder still takes two for a long batch (its own limit).
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        app = create_app(engine, root_path=root_path, cors_origins=list(cors_origins))
        settle_heap()
        print(f"rag: serving on http://{host}:{port}{root_path}/", file=sys.stderr, flush=True)
        # h11 refuses a request whose headers pass 16 KiB; uvicorn's httptools parser (picked
        # by default when installed) buffers headers of any size: a client could fill memory.
        config = uvicorn.Config(app, host=host, port=port, root_path=root_path,
                                log_level="warning", proxy_headers=True,
                                http=h11_with_deadline(request_timeout))
        uvicorn.Server(config).run(sockets=[sock])


def settle_heap() -> None:
    """Leave what is loaded to stay out of the garbage collector's full passes.

    The engine, Gradio and their libraries are some 200,000 objects that live as long as the
    server. Each full pass walked them all while holding the interpreter: about a tenth of a
    second, a few times a minute under load, during which no question moved on; that pause
    was most of the tail latency at 50 clients (bench/load.py). Frozen, a pass walks only
    what was made since. Nothing frozen is ever freed, which suits a server that never
    unloads its engine.
    """
    gc.collect()
    gc.freeze()


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (0: any free port), or a RagError saying why it cannot be."""
    if not 0 <= port <= 65535:
        raise RagError(f"cannot listen on port {port}: a port is a number from 0 to 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise RagError(f"cannot listen on {host}:{port}: {_reason(exc)}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        hint = "; another server may be running there, or choose another --port" \
            if exc.errno == errno.EADDRINUSE else ""
        raise RagError(f"cannot listen on {host}:{port}: {_reason(exc)}{hint}") from None
    sock.set_inheritable(True)
    return sock


def _reason(exc: Exception) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def h11_with_deadline(seconds: float):
    """uvicorn's h11 protocol, closing a connection whose request takes over `seconds` to
    arrive whole.

    uvicorn closes idle keep-alive connections, but not one that sends part of a request and
    stalls: thousands of those (slowloris) would hold the server's sockets for good. The
    deadline runs from the connection's start, or its last response, until the request's
    last byte arrives; answering it and streaming the answer are not limited.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():
                self._arm()
            super().on_response_complete()  # may read a pipelined request, which disarms

        def handle_events(self) -> None:
            super().handle_events()
            cycle = self.cycle
            if cycle is not None and not cycle.more_body and not cycle.response_complete:
                self._disarm()  # the request is all here; its answer is on the way

        def handle_websocket_upgrade(self, event) -> None:
            self._disarm()
            super().handle_websocket_upgrade(event)

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

    return Protocol
