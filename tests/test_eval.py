"""`rag eval` as a researcher uses it on a gold set of their own: a malformed file gets one
clear line naming where, never a traceback nor a score that counts a typo as the engine's
miss; each miss says what it expected and got; evidence is found in whichever transcript the
item names."""

from __future__ import annotations

import json

import pytest

from rag.errors import InputFileError
from rag.evaluate import MEANS, check_gold, evaluate, format_table, read_gold
from tests.conftest import SECOND_NAME, TRANSCRIPT
from tests.test_cli import rag

SAHEL = {"id": "s", "lang": "fr", "question": "Que dit Blinken du Sahel ?", "turn": 3,
         "evidence": ["faire encore plus ensemble au Sahel"], "abstain": False}
OFF = {"id": "o", "lang": "en", "question": "Who won the 2018 World Cup?", "abstain": True}


def write(path, *lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n",
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("line, message", [
    ("{not json", "not valid JSON"),
    ('["a list"]', "JSON object"),
    (json.dumps({"question": "Sahel ?"}), '"abstain"'),
    (json.dumps({"question": "", "abstain": True}), '"question"'),
    (json.dumps({**SAHEL, "turn": "3"}), '"turn"'),
    (json.dumps({**SAHEL, "turn": 0}), '"turn"'),
    (json.dumps({**SAHEL, "evidence": []}), '"evidence"'),
    (json.dumps({**SAHEL, "evidence": "faire encore plus"}), '"evidence"'),
    (json.dumps({**SAHEL, "source": 3}), '"source"'),
    ("[" * 200_000, "nested too deeply"),
    ('{"question": "x", "abstain": true, "n": ' + "1" * 5_000 + "}", "number too long"),
    (json.dumps({**OFF, "question": "x" * 1_001}), '"question" cannot be asked: .* too long'),
    (json.dumps({**OFF, "question": "\u200b\u200b"}), '"question" cannot be asked: .* empty'),
    (json.dumps({**OFF, "id": "\ud800"}), '"id" holds a lone surrogate'),
    (json.dumps({**OFF, "lang": "\udc00"}), '"lang" holds a lone surrogate'),
])
def test_a_malformed_line_is_named_by_file_and_line(tmp_path, line, message):
    path = write(tmp_path / "gold.jsonl", SAHEL, line)
    with pytest.raises(InputFileError, match=message) as caught:
        read_gold(path)
    assert str(caught.value).startswith(f"{path}:2: ")


def test_the_command_exits_6_with_one_line_before_loading_the_models(tmp_path):
    path = write(tmp_path / "gold.jsonl", "", SAHEL, "{oops")
    for args in (["eval", str(path)], ["eval", str(tmp_path / "none.jsonl")],
                 ["eval", str(tmp_path)], ["ask", "--batch", str(tmp_path / "none.txt")]):
        out = rag(*args, "--index", str(tmp_path / "no-index"), cwd=tmp_path)
        # Exit 6, not 3: the file is refused before the (missing) index is looked for.
        assert out.returncode == 6, (args, out.stderr)
        assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
        assert out.stdout == ""
    assert f"{path}:3: not valid JSON" in rag("eval", str(path), cwd=tmp_path).stderr
    (tmp_path / "latin1.jsonl").write_bytes(b'{"question": "\xe9t\xe9", "abstain": true}\n')
    assert "not UTF-8" in rag("eval", str(tmp_path / "latin1.jsonl"), cwd=tmp_path).stderr


def test_two_items_cannot_share_an_id(tmp_path):
    """Misses are named by id, so an id names one item."""
    with pytest.raises(InputFileError, match="'s' is already the id of line 1") as caught:
        read_gold(write(tmp_path / "gold.jsonl", SAHEL, OFF, {**OFF, "id": "s"}))
    assert str(caught.value).startswith(f"{tmp_path / 'gold.jsonl'}:3: ")


def test_a_blank_file_is_not_a_gold_set(tmp_path):
    with pytest.raises(InputFileError, match="no gold questions"):
        read_gold(write(tmp_path / "gold.jsonl", ""))


def test_evidence_or_answers_the_transcript_lacks_are_refused_not_scored(engine):
    check_gold(engine, [SAHEL, OFF])
    for item, message in [
        ({**SAHEL, "evidence": ["faire encore plus ensemble au Mali"]}, "evidence not found"),
        ({**SAHEL, "turn": 6}, "no answer 6"),
        ({**SAHEL, "source": "data/other.txt"}, "no transcript 'data/other.txt'"),
    ]:
        with pytest.raises(InputFileError, match=message):
            check_gold(engine, [SAHEL, item])
        with pytest.raises(InputFileError, match=message):
            evaluate(engine, [item])


@pytest.mark.parametrize("typed", [
    "FAIRE encore plus ensemble au SAHEL",             # case
    "faire encore plus  ensemble\nau Sahel",           # spacing
    "« faire encore plus ensemble au Sahel »",          # quotation marks
])
def test_evidence_typed_rather_than_copied_scores_as_the_copied_evidence(engine, typed):
    """A researcher who types evidence, or copies it through a word processor, gets it found
    where the transcript has it, not the whole file refused."""
    copied = evaluate(engine, [SAHEL])
    report = evaluate(engine, [{**SAHEL, "evidence": [typed]}])
    assert report["all"] == copied["all"] and report["all"]["evidence@1"] == 1.0


def test_evidence_is_located_whatever_its_apostrophes_and_accents(engine):
    from rag.evaluate import locate

    text = engine.index.corpus.texts[next(iter(engine.index.corpus.texts))]
    for copied, typed in [("Ce qu'on fait maintenant", "ce qu\u2019on fait maintenant"),
                          ("la France et les Etats-Unis", "la France et les États-Unis"),
                          ("je crois que nous sommes très engagés",
                           "je crois que nous sommes tre\u0300s engage\u0301s")]:
        at = text.find(copied)
        assert at >= 0 and locate(text, typed) == (at, at + len(copied))
    assert locate(text, "faire encore plus ensemble au Mali") is None


def test_the_command_names_the_file_of_a_gold_item_the_index_cannot_score(project, tmp_path):
    path = write(tmp_path / "gold.jsonl", {**SAHEL, "evidence": ["pas dans l'entretien"]})
    out = rag("eval", str(path), cwd=project)
    assert out.returncode == 6 and "Traceback" not in out.stderr
    assert out.stderr.startswith(f"rag: error: {path}: gold item s: evidence not found")


def test_each_miss_says_what_it_expected_and_what_it_got(engine):
    gold = [SAHEL,
            {**SAHEL, "id": "wrong-turn", "turn": 2,
             "evidence": ["Au Sahel, il y a déjà un partenariat très important"]},
            {**OFF, "id": "no-answer", "turn": 1, "abstain": False,
             "evidence": ["on aurait dû faire mieux"]},
            {**SAHEL, "id": "not-off-topic", "abstain": True}]
    report = evaluate(engine, gold)
    assert report["misses"] == ["wrong-turn", "no-answer", "not-off-topic"]
    assert report["missed"] == [
        {"id": "wrong-turn", "expected": 2, "got": "answer 3"},
        {"id": "no-answer", "expected": 1, "got": "an abstention"},
        {"id": "not-off-topic", "expected": None, "got": "answer 3"}]
    table = format_table(report)
    assert "  wrong-turn: expected answer 2, got answer 3" in table
    assert "  not-off-topic: expected an abstention, got answer 3" in table
    assert report["off_evidence"] == []


def test_a_quote_from_another_part_of_the_right_answer_says_where_the_evidence_lies(engine):
    """The right answer with the wrong sentence quoted counts for turn@1, not evidence@1, and
    the report says where the evidence lies and what was quoted instead."""
    text = next(iter(engine.index.corpus.texts.values()))
    experts = "Nous avons nos experts qui vont se réunir"
    report = evaluate(engine, [{**SAHEL, "id": "part", "evidence": [experts]}, SAHEL])
    row = report["per_question"][0]
    assert row["correct"] and row["evidence@1"] is False
    start, end = row["chars"]
    assert experts not in text[start:end]
    at = text.index(experts)
    assert report["off_evidence"] == [
        {"id": "part", "chars": [start, end], "evidence": [[at, at + len(experts)]]}]
    assert report["per_question"][1]["evidence@1"] is True
    assert f"  part: evidence at chars {at}–{at + len(experts)}; quoted chars {start}–{end}" \
        in format_table(report)
    assert 0 <= row["confidence"] <= 1


def test_an_item_without_an_id_is_named_by_its_line(tmp_path):
    unnamed = {k: v for k, v in SAHEL.items() if k != "id"}
    assert read_gold(write(tmp_path / "g.jsonl", "", unnamed))[0]["id"] == "line 2"


def test_evidence_and_answers_are_read_in_the_transcript_the_item_names(two_engine):
    """With two interviews indexed, evidence in the second one counts, and an item naming a
    transcript is right only when its top citation comes from that one."""
    gas = {"id": "gas", "lang": "en", "question": "What will be done about household gas bills?",
           "turn": 1, "evidence": ["We will cap household gas bills for two years"],
           "abstain": False}
    costa, blinken = f"data/{SECOND_NAME}", f"data/{TRANSCRIPT.name}"
    for item in (gas, {**gas, "source": costa}):
        scores = evaluate(two_engine, [item])["all"]
        assert scores["turn@1"] == 1.0 and scores["evidence@1"] == 1.0, item
    # Answer 1 of the other interview is not answer 1 of the one the item names.
    wrong = {**gas, "source": blinken, "evidence": ["on aurait dû faire mieux"]}
    assert evaluate(two_engine, [wrong])["all"]["turn@1"] == 0.0
    # The Sahel answer is answer 3 of the Blinken interview; the second one has no answer 3.
    assert evaluate(two_engine, [{**SAHEL, "source": blinken}])["all"]["turn@1"] == 1.0
    with pytest.raises(InputFileError, match="no answer 3"):
        check_gold(two_engine, [{**SAHEL, "source": costa}])
    missed = evaluate(two_engine, [{**SAHEL, "id": "t", "turn": 1, "evidence": [
        "Families should not choose between heating and eating"]}])["missed"]
    assert missed == [{"id": "t", "expected": 1, "got": f"answer 3 of {blinken}"}]


@pytest.mark.parametrize("line, message", [
    ("[" * 200_000, "nested too deeply"),
    ('{"question": "x", "abstain": true, "n": ' + "1" * 5_000 + "}", "number too long"),
    (json.dumps({**OFF, "question": "\u200b\u200b"}), "the question is empty"),
])
def test_an_unreadable_line_exits_6_naming_it_before_the_models_load(tmp_path, line, message):
    path = write(tmp_path / "gold.jsonl", SAHEL, line)
    out = rag("eval", str(path), "--index", str(tmp_path / "no-index"), cwd=tmp_path)
    assert out.returncode == 6 and out.stdout == "" and out.stderr.count("\n") == 1
    assert out.stderr.startswith(f"rag: error: {path}:2: ") and message in out.stderr


def test_items_ask_would_refuse_are_refused_naming_the_item(engine):
    for question, message in (("x" * 1_001, "too long"), ("\u200b\u200b", "empty")):
        with pytest.raises(InputFileError, match=f'gold item o: "question" cannot be asked: '
                                                 f'.*{message}'):
            evaluate(engine, [SAHEL, {**OFF, "question": question}])
    with pytest.raises(InputFileError, match='gold item o: "previous" cannot be asked with: '
                                             '.*too long'):
        evaluate(engine, [SAHEL, {**OFF, "previous": "x" * 1_001}])
    evaluate(engine, [SAHEL, {**OFF, "previous": "  "}])  # blank: no context, as in `ask`


def test_a_question_with_a_lone_surrogate_is_scored_as_ask_reads_it(engine, tmp_path):
    path = write(tmp_path / "gold.jsonl",
                 {**SAHEL, "question": "Que dit Blinken du Sahel \ud800 ?",
                  "previous": "La France \udc00 ?"})
    report = evaluate(engine, read_gold(path))
    assert report["all"]["questions"] == 1 and report["all"]["integrity"] == 1.0
    assert report["all"]["MRR"] == 1.0


def test_each_metric_comes_with_a_95_percent_interval_around_it(engine):
    """A few dozen questions leave a metric uncertain by several points: the report says by
    how much, per language, so that two settings are not told apart by chance."""
    gold = [SAHEL,
            {**SAHEL, "id": "wrong-turn", "turn": 2,
             "evidence": ["Au Sahel, il y a déjà un partenariat très important"]},
            {**SAHEL, "id": "s2", "lang": "en", "question": "What about the Sahel?"},
            OFF, {**OFF, "id": "o2", "lang": "fr", "question": "Qui a gagné la Coupe du monde ?"}]
    report = evaluate(engine, gold)
    for group in ("all", "en", "fr"):
        spread = report["intervals"][group]
        for metric, bounds in spread.items():
            value = report[group][metric]
            if value is None or metric in MEANS:  # no mean bounded from 3 values
                assert bounds is None, (group, metric)
                continue
            lo, hi = bounds
            assert 0.0 <= lo <= value <= hi <= 1.0, (group, metric, bounds, value)
            assert hi - lo > 0.1, (group, metric)  # at most three questions: wide, never a point
    # The Wilson interval of a rate: all of ten questions right still allows 72% in truth.
    from rag.evaluate import wilson
    assert [round(x, 3) for x in wilson(10, 10)] == [0.722, 1.0]
    assert [round(x, 3) for x in wilson(0, 10)] == [0.0, 0.278]
    table = format_table(report)
    assert "95% interval" in table and "turn@1" in table.split("95% interval")[1]
    # Means are bounded by resampling the questions, once there are enough of them.
    many = evaluate(engine, [{**SAHEL, "id": f"s{i}"} for i in range(12)] + [
        {**SAHEL, "id": "wrong-turn", "turn": 2,
         "evidence": ["Au Sahel, il y a déjà un partenariat très important"]}])
    lo, hi = many["intervals"]["all"]["MRR"]
    assert lo < many["all"]["MRR"] <= hi


def test_a_run_is_compared_with_an_earlier_report_question_by_question(engine, project,
                                                                        tmp_path):
    """`--against` names what a change gained and lost on the same gold set, and how likely
    so uneven a split is by chance: a researcher's test of whether a setting helps."""
    from rag.evaluate import compare, mcnemar, read_report

    gold = [SAHEL, {**SAHEL, "id": "s2", "lang": "en", "question": "What about the Sahel?"},
            OFF, {**OFF, "id": "o2", "question": "Qui a gagné la Coupe du monde ?"}]
    now = evaluate(engine, gold)
    assert [q["id"] for q in now["per_question"]] == ["s", "s2", "o", "o2"]
    assert all(q["correct"] for q in now["per_question"])
    same = compare(now, evaluate(engine, gold))
    assert same["gained"] == same["lost"] == [] and same["p_value"] == 1.0
    # An earlier run that got "s" wrong and that never asked "o2".
    earlier = json.loads(json.dumps(now))
    earlier["per_question"][0]["correct"] = False
    del earlier["per_question"][3]
    diff = compare(now, earlier)
    assert diff["gained"] == ["s"] and diff["lost"] == []
    assert (diff["compared"], diff["only_now"], diff["only_before"]) == (3, 1, 0)
    assert (diff["right_before"], diff["right_now"]) == (2, 3)
    assert diff["evidence_gained"] == diff["evidence_lost"] == []
    earlier["per_question"][1]["evidence@1"] = False  # quoted elsewhere in the right answer
    assert compare(now, earlier)["evidence_gained"] == ["s2"]
    # Six changes all one way are unlikely by chance (2 / 2**6); one each way is not at all.
    assert mcnemar(0, 6) == pytest.approx(0.03125) and mcnemar(1, 1) == 1.0
    # From the command line, with the earlier report as `--json` wrote it.
    path = write(tmp_path / "gold.jsonl", *gold)
    before = tmp_path / "before.json"
    before.write_text(json.dumps(earlier), encoding="utf-8")
    out = rag("eval", str(path), "--against", str(before), cwd=project)
    assert out.returncode == 0, out.stderr
    assert "right 2 -> 3" in out.stdout and "  gained: s\n" in out.stdout
    assert "  1 question only in this run, not compared" in out.stdout
    assert read_report(before)["per_question"][0]["id"] == "s"
    # Anything else is refused in one line before the models load.
    for text in ("{oops", '{"all": {}}', '{"per_question": [{"id": "s"}]}', "[]"):
        before.write_text(text, encoding="utf-8")
        bad = rag("eval", str(path), "--against", str(before), "--index",
                  str(tmp_path / "no-index"), cwd=tmp_path)
        assert bad.returncode == 6 and bad.stderr.count("\n") == 1, (text, bad.stderr)
        assert "not a report written by `rag eval --json`" in bad.stderr
