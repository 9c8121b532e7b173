"""The `rag` command: build the index, ask questions, evaluate, serve."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .errors import (
    IndexCorruptError,
    IndexMissingError,
    IndexStaleError,
    IndexWriteError,
    InputFileError,
    QuestionError,
    RagError,
    TranscriptFormatError,
)

EXIT_CODES = [
    (QuestionError, 2),
    (IndexMissingError, 3), (IndexStaleError, 3), (IndexCorruptError, 3),
    (TranscriptFormatError, 4), (IndexWriteError, 5), (InputFileError, 6), (RagError, 1),
]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--index", default=os.environ.get("RAG_INDEX", "index"),
                        help="index folder (default: ./index, or $RAG_INDEX)")
    common.add_argument("--model", default=os.environ.get("RAG_MODEL"),
                        help="sentence-transformers model name or path "
                             "(default: the bundled all-MiniLM-L6-v2)")
    common.add_argument("--backend", default=os.environ.get("RAG_BACKEND"),
                        choices=["onnx-int8", "onnx", "torch"],
                        help="how the sentence-transformers model runs, exported once to "
                             "ONNX and run without torch: onnx-int8 (default; int8 weights, "
                             "vectors within ~0.99 cosine), onnx (the same vectors); or torch")
    common.add_argument("--cache-dir", default=os.environ.get("RAG_CACHE_DIR"),
                        help="where exported models are kept (default ~/.cache/rag/models)")
    common.add_argument("--no-multilingual", action="store_true",
                        help="leave out the multilingual encoder")
    common.add_argument("--e5", action="store_true",
                        help="add the multilingual-e5-small retrieval model: it settles close "
                             "calls between two answers (better answers to new questions; "
                             "about 20 ms more on each close call, about a third of questions)")
    sub = parser.add_subparsers(dest="command", required=True)

    build = sub.add_parser("build", parents=[common], help="build the index from transcripts")
    build.add_argument("sources", nargs="*", help="transcript files (default: data/*.txt)")

    ask = sub.add_parser("ask", parents=[common], help="answer a question with citations")
    ask.add_argument("question", nargs="?", help="the question")
    ask.add_argument("--json", action="store_true", help="print the JSON contract")
    ask.add_argument("--batch", metavar="FILE",
                     help="one question per line ('-' for standard input); one JSON line each")
    ask.add_argument("-k", type=int, default=3, help="most citations (default 3)")
    ask.add_argument("--previous", help="the previous question, for a follow-up")
    ask.add_argument("--source", action="append", metavar="SOURCE", dest="sources",
                     help="only this transcript, as citations name it (data/….txt); "
                          "repeat for several (default: all)")
    ask.add_argument("--rebuild", action="store_true",
                     help="rebuild the index first if it is missing or stale")

    ev = sub.add_parser(
        "eval", parents=[common], help="score the engine on a gold set",
        description="Score the engine on a gold set: one JSON object per line, "
                    '{"id", "lang", "question", "abstain": false, "turn": N, "evidence": '
                    '["exact substring", ...]} for a question the transcripts answer (answer '
                    'N, from 1), {"id", "lang", "question", "abstain": true} for one they do '
                    'not; optional "previous" (the question before a follow-up) and "source" '
                    "(the transcript, when several are indexed). Evidence typed rather than "
                    "copied is found regardless of case, accents, apostrophes, quotes and "
                    "spacing. The file is checked before it is scored; each miss is listed "
                    "with what it expected and got, and each quote from another part of the "
                    "right answer with where the evidence lies.")
    ev.add_argument("gold", help="gold JSONL file")
    ev.add_argument("--json", action="store_true", help="print the metrics as JSON")
    ev.add_argument("--against", metavar="REPORT",
                    help="an earlier `rag eval --json` report on the same gold set: list the "
                         "questions gained and lost, with the chance of such a difference "
                         "if neither run is better (exact McNemar test), and those whose "
                         "first citation gained or lost the evidence")

    serve = sub.add_parser("serve", parents=[common], help="serve the browser UI and HTTP API")
    serve.add_argument("--host", default=os.environ.get("RAG_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=int(os.environ.get("RAG_PORT", "7860")))
    serve.add_argument("--root-path", default=os.environ.get("RAG_ROOT_PATH", ""),
                       help="sub-path the app is served under behind a proxy")
    serve.add_argument("--cors-origins", default=os.environ.get("RAG_CORS_ORIGINS", ""),
                       help="comma-separated origins allowed to call and embed the app")
    serve.add_argument("--request-timeout", type=_positive,
                       default=os.environ.get("RAG_REQUEST_TIMEOUT", "30"),
                       help="seconds a client has to send a whole request (default 30)")
    return parser


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def _settings(args, *, building: bool = False):
    """The index settings the flags ask for; None when they name none, so that an index is
    read with whatever it was built with (a build takes the defaults)."""
    from .embed import DEFAULT_BACKEND, DEFAULT_MODEL
    from .index import IndexSettings

    if not building and args.model is None and args.backend is None and \
            not args.no_multilingual and not args.e5:
        return None
    return IndexSettings(model=args.model or DEFAULT_MODEL,
                         backend=args.backend or DEFAULT_BACKEND,
                         multilingual=not args.no_multilingual, e5=args.e5)


def _progress(label: str, total: int):
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, unit="text", file=sys.stderr, leave=False)

    def tick(done: int) -> None:
        bar.update(done)
        if bar.n >= total:
            bar.close()
    return tick


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        return _run(args)
    except RagError as exc:
        code = next(c for kind, c in EXIT_CODES if isinstance(exc, kind))
        hint = " (run `rag build`, or `rag ask --rebuild`)" if code == 3 else ""
        print(f"rag: error: {exc}{hint}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _run(args) -> int:
    from .engine import build, load_engine

    if args.command == "build":
        index = build(args.index, root=Path.cwd(), sources=args.sources or None,
                      settings=_settings(args, building=True), progress=_progress,
                      cache_dir=args.cache_dir)
        m = index.manifest
        print(f"indexed {m['passages']} passages ({m['clauses']} clauses, "
              f"{m['words']['count']} words) from {m['documents']} answers in "
              f"{len(m['sources'])} transcript(s) into {args.index}/")
        return 0
    if args.command == "serve":
        from .server import serve

        serve(index_dir=args.index, root=Path.cwd(), settings=_settings(args), host=args.host,
              port=args.port, root_path=args.root_path, cache_dir=args.cache_dir,
              cors_origins=[o.strip() for o in args.cors_origins.split(",") if o.strip()],
              request_timeout=args.request_timeout)
        return 0
    if args.command == "ask":
        return _ask(args, load_engine)
    if args.command == "eval":
        from .evaluate import compare, evaluate, format_table, read_gold, read_report

        gold = read_gold(args.gold)
        before = read_report(args.against) if args.against else None
        engine = load_engine(args.index, root=Path.cwd(), settings=_settings(args),
                             cache_dir=args.cache_dir)
        try:  # evaluate checks the gold set against the index before scoring anything
            report = evaluate(engine, gold)
        except InputFileError as exc:
            raise InputFileError(str(exc), source=args.gold) from None
        if before is not None:
            report["against"] = compare(report, before)
        print(json.dumps(report, ensure_ascii=False, indent=2) if args.json
              else format_table(report))
        return 0
    return 2


def _ask(args, load_engine) -> int:
    from .answer import MAX_K, ask, clean_previous, clean_question
    from .retrieve import select_sources

    # Usage is checked before anything loads: a batch would otherwise give each of its lines
    # the same error, or drop a question given beside it without a word.
    if not 1 <= args.k <= MAX_K:
        raise QuestionError(f"-k must be a whole number from 1 to {MAX_K}")
    if args.batch is None:
        if args.question is None:
            raise QuestionError("give a question, or --batch FILE")
        clean_question(args.question)  # fail fast, before loading the model
        clean_previous(args.previous)
    else:
        if args.question is not None or args.previous is not None:
            raise QuestionError("--batch reads its questions from FILE: give no question and "
                                "no --previous with it")
        lines = _stdin_lines() if args.batch == "-" else _batch_lines(args.batch)
    engine = load_engine(args.index, root=Path.cwd(), settings=_settings(args),
                         rebuild=args.rebuild, progress=_progress, cache_dir=args.cache_dir,
                         on_rebuild=lambda why: print(f"rag: rebuilding the index: {why}",
                                                      file=sys.stderr))
    select_sources(engine, args.sources)  # an unknown transcript fails once, before any work
    if args.batch is None:
        answer = ask(engine, args.question, k=args.k, previous=args.previous,
                     sources=args.sources)
        if args.json:
            print(json.dumps(answer.to_dict(), ensure_ascii=False))
        else:
            print(_readable(answer))
        return 0
    # A file is answered 32 questions at a time, embedded together; standard input one line
    # at a time, so a program feeding it a line gets that line's answer at once.
    group = 1 if args.batch == "-" else 32
    pending: list[str] = []
    for line in lines:
        if line.strip():
            pending.append(line)
        if len(pending) >= group:
            _answer_lines(engine, pending, args.k, args.sources)
            pending = []
    _answer_lines(engine, pending, args.k, args.sources)
    return 0


def _batch_lines(path: str) -> list[str]:
    """The batch file's lines, read before the models load so that a wrong path or a line
    that is not UTF-8 fails at once, naming it, rather than being answered garbled."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise InputFileError(f"cannot read the questions ({exc.strerror or exc})",
                             source=path) from None
    return [_decode(line, n, path) for n, line in enumerate(raw.splitlines(), 1)]


def _stdin_lines():
    """Standard input's lines as they come, each decoded alone, so that one that is not
    UTF-8 stops the batch naming its line, after the lines before it were answered."""
    n = 0
    for chunk in sys.stdin.buffer:  # up to each "\n"; a lone "\r" ends a line too, as in a file
        for line in chunk.splitlines():
            n += 1
            yield _decode(line, n, "standard input")


def _decode(line: bytes, n: int, source: str) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise InputFileError("not UTF-8 text", n, source) from None


def _answer_lines(engine, questions: list[str], k: int, sources: list[str] | None) -> None:
    from .answer import Request, ask_many

    asked = [Request(q, k, sources=sources) for q in questions]
    for question, answer in zip(questions, ask_many(engine, asked), strict=True):
        record = {"question": question[:200], "error": str(answer)} \
            if isinstance(answer, QuestionError) else answer.to_dict()
        print(json.dumps(record, ensure_ascii=False), flush=True)


def _readable(answer) -> str:
    if answer.abstained:
        lines = [answer.answer]
        if answer.closest:
            lines.append("\nClosest passages (not an answer):")
            lines += [f"  - \u201c{c.text}\u201d ({c.reference()})" for c in answer.closest]
        return "\n".join(lines)
    lines = [answer.answer, ""]
    for c in answer.citations:
        lines.append(f"[{c.n}] {c.reference()}, {c.source}")
        lines.append(f"    in answer to: {c.question}")
    if answer.confidence is not None:
        lines.append(f"\nconfidence {answer.confidence:.2f}{_weak_note(answer)}")
    return "\n".join(lines)


def _weak_note(answer) -> str:
    if not answer.weak:
        return ""
    if answer.answers_quoted > 1:
        return ": a weak match, the quotes come from different answers: check which one answers it"
    return ": a weak match, check that it answers the question"


if __name__ == "__main__":
    sys.exit(main())
