"""The synthetic multilingual shapes task: training conversations and held-out MCQ benchmarks.

Training records are LLaVA JSON (one image each) mixing short answers and multiple-choice answers,
some with further questions about the same image. Benchmarks are VLMEvalKit TSVs: MMMB
(``mmmb_{en,cn,pt,ar,tr,ru}.tsv``, the same images and questions in every language) and the
multilingual MMBench layout (``mmbench_dev_{lang}.tsv``) with circular copies. Train and test draw
from separate random streams and write separate images. Everything is a function of the seed.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmoe.data.records import IMAGE_TOKEN
from mmoe.data.synthetic.draw import Scene, png_bytes, render, sample_scene
from mmoe.data.synthetic.lexicon import (
    COLOURS, COUNTS, FULL_SENTENCE, KINDS, POSITIONS, QUESTIONS, SENTENCE, SHAPES, SHORT_ANSWER, SHORT_FORMATS, answer_text,
)
from mmoe.eval.prompts import STYLES, TRAINING_STYLE, mcq_prompt
from mmoe.languages import MMMB_LANGUAGES, mmmb_file_code

CIRCULAR_OFFSET = 1_000_000
MMBENCH_L2 = "finegrained_perception (instance-level)"
_VALUES = {"color": COLOURS, "shape": SHAPES, "count": COUNTS, "position": POSITIONS}


@dataclass(frozen=True)
class Question:
    kind: str
    value: str | int
    options: tuple[str | int, ...]  # four attribute values, the answer among them
    phrasing: int

    @property
    def answer_index(self) -> int:
        return self.options.index(self.value)


def _value(scene: Scene, kind: str) -> str | int:
    return {"color": scene.colour, "shape": scene.shape, "count": scene.count, "position": scene.position}[kind]


def _answerable(scene: Scene) -> list[str]:
    """Question kinds this scene answers: colour and shape always, count for several shapes, position when placed."""
    return [k for k in KINDS if (k != "count" or scene.count > 1) and (k != "position" or scene.position)]


def sample_question(scene: Scene, kind: str, rng: random.Random) -> Question:
    value = _value(scene, kind)
    others = [v for v in _VALUES[kind] if v != value]
    options = [value, *rng.sample(others, 3)]
    rng.shuffle(options)
    return Question(kind, value, tuple(options), rng.randrange(2))


def option_texts(question: Question, language: str) -> dict[str, str]:
    return {string.ascii_uppercase[i]: answer_text(language, question.kind, v) for i, v in enumerate(question.options)}


MCQ_ANSWERS = ("letter", "text")


@dataclass(frozen=True)
class MCQFormat:
    """How training records pose multiple-choice questions: the eval prompt style, and whether the
    reply is the option's letter or its text (VLMEvalKit maps a reply equal to one option's text to
    that option)."""

    style: str = TRAINING_STYLE
    answer: str = "letter"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"MCQ prompt style must be one of {', '.join(STYLES)}, not {self.style!r}")
        if self.answer not in MCQ_ANSWERS:
            raise ValueError(f"MCQ answer must be one of {', '.join(MCQ_ANSWERS)}, not {self.answer!r}")


def _instructed(text: str, instruction: str, language: str) -> str:
    return text + instruction if language == "zh" else f"{text} {instruction}"


def _turns(question: Question, language: str, mcq: MCQFormat | None, first: bool, short: str = "word") -> list[dict[str, str]]:
    """One user/assistant pair: a multiple-choice question in ``mcq``'s format, or when ``mcq`` is None a
    short answer in the ``short`` format (``word``: the answer word; ``sentence``: a full sentence)."""
    text = QUESTIONS[language][question.kind][question.phrasing]
    if mcq is not None:
        options = option_texts(question, language)
        user = mcq_prompt(text, options, language, style=mcq.style)
        letter = string.ascii_uppercase[question.answer_index]
        answer = letter if mcq.answer == "letter" else options[letter]
    elif short == "sentence":
        user = _instructed(text, FULL_SENTENCE[language], language)
        answer = SENTENCE[language].format(answer_text(language, question.kind, question.value))
    else:
        user, answer = _instructed(text, SHORT_ANSWER[language], language), answer_text(language, question.kind, question.value)
    if first:
        user = f"{IMAGE_TOKEN}\n{user}"
    return [{"from": "human", "value": user}, {"from": "gpt", "value": answer}]


def generate_training_set(
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    languages: list[str] | tuple[str, ...] = MMMB_LANGUAGES,
    mcq_fraction: float = 0.5,
    extra_questions: int = 1,
    extra_question_fraction: float = 0.2,
    mcq_format: MCQFormat = MCQFormat(),
    short_format: str = "word",
    language_weights: dict[str, float] | None = None,
) -> Path:
    """Write ``n`` LLaVA records and their images under ``out_dir``; return the path of ``train.json``.

    Images are ``images/NNN/NNNNNN.png`` (64x64) relative to ``out_dir`` (the image root). Question
    kinds (colour, shape, count, position) and languages are balanced by cycling. Up to
    ``extra_questions`` further turns (each kept with probability ``extra_question_fraction``) ask
    about other attributes the same scene answers. A turn is multiple choice (in ``mcq_format``) with
    probability ``mcq_fraction``, else a short answer in ``short_format`` (``word`` or ``sentence``).
    ``language_weights`` skews the language mix (e.g. ``{"en": 0.8, ...}``, normalised; every language
    of ``languages`` needs a positive weight); question kinds then cycle within each language.
    """
    if short_format not in SHORT_FORMATS:
        raise ValueError(f"short_format must be one of {', '.join(SHORT_FORMATS)}, not {short_format!r}")
    out = Path(out_dir)
    rng = random.Random(f"mmoe-synthetic-train-{seed}")
    schedule = _schedule(n, tuple(languages), language_weights)
    records = []
    for i, (language, kind) in enumerate(schedule):
        scene = sample_scene(kind, rng)
        question = sample_question(scene, kind, rng)
        conversation = _turns(question, language, mcq_format if rng.random() < mcq_fraction else None, first=True, short=short_format)
        others = [k for k in _answerable(scene) if k != kind]
        for extra_kind in rng.sample(others, min(extra_questions, len(others))):
            if rng.random() < extra_question_fraction:
                extra = sample_question(scene, extra_kind, rng)
                conversation += _turns(extra, language, mcq_format if rng.random() < mcq_fraction else None, first=False,
                                       short=short_format)
        rel = f"images/{i // 1000:03d}/{i:06d}.png"
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(render(scene)))
        records.append({"id": f"synthetic-{seed}-{i:06d}", "image": rel, "language": language, "conversations": conversation})
    target = out / "train.json"
    target.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")
    return target


def _schedule(n: int, languages: tuple[str, ...], weights: dict[str, float] | None) -> list[tuple[str, str]]:
    """(language, question kind) of each record. Without weights languages cycle, then kinds (the
    default data); with weights each record goes to the language furthest below its share, and kinds
    cycle within each language, so every language's questions stay balanced over kinds."""
    if weights is None:
        return [(languages[i % len(languages)], KINDS[(i // len(languages)) % len(KINDS)]) for i in range(n)]
    unknown = sorted(set(weights) - set(languages))
    missing = [lang for lang in languages if weights.get(lang, 0) <= 0]
    if unknown or missing:
        raise ValueError(f"language_weights: every language needs a positive weight (missing or not positive: {missing}) "
                         f"and only languages of {list(languages)} may have one (unknown: {unknown})")
    total = sum(weights.values())
    counts = dict.fromkeys(languages, 0)
    schedule = []
    for i in range(n):
        language = max(languages, key=lambda lang: weights[lang] / total * (i + 1) - counts[lang])
        schedule.append((language, KINDS[counts[language] % len(KINDS)]))
        counts[language] += 1
    return schedule


def _benchmark_items(n: int, rng: random.Random) -> list[tuple[Scene, Question, str]]:
    items = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        scene = sample_scene(kind, rng)
        items.append((scene, sample_question(scene, kind, rng), base64.b64encode(png_bytes(render(scene))).decode("ascii")))
    return items


def _rows(items, language: str, circular: bool) -> list[dict]:
    rows = []
    for index, (_, question, image) in enumerate(items):
        options = option_texts(question, language)
        row = {
            "index": index, "image": image, "question": QUESTIONS[language][question.kind][question.phrasing],
            "hint": "", **options, "answer": string.ascii_uppercase[question.answer_index], "category": question.kind,
        }
        if circular:
            row["l2-category"] = MMBENCH_L2
        rows.append({**row, "split": "dev"})
    if circular:
        rows += [_rotated(row, k) for k in range(1, 4) for row in list(rows)]
    return rows


def _rotated(row: dict, k: int) -> dict:
    """VLMEvalKit's circular copy ``k``: options shifted right by ``k``, answer moved with them, image by reference."""
    letters = "ABCD"
    options = [row[c] for c in letters]
    rotated = {letters[(j + k) % 4]: options[j] for j in range(4)}
    answer = letters[(letters.index(row["answer"]) + k) % 4]
    return {**row, **rotated, "index": row["index"] + k * CIRCULAR_OFFSET, "image": str(row["index"]), "answer": answer}


def generate_benchmarks(
    out_dir: str | Path,
    n_per_language: int,
    seed: int = 0,
    languages: list[str] | tuple[str, ...] = MMMB_LANGUAGES,
) -> list[Path]:
    """Write ``mmmb_{code}.tsv`` and ``mmbench_dev_{code}.tsv`` (``cn`` for Chinese); return their paths.

    Each language holds the same ``n_per_language`` images and questions (category = question kind,
    balanced); MMBench files add ``l2-category`` and three circular copies per question.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    mmmb = _benchmark_items(n_per_language, random.Random(f"mmoe-synthetic-mmmb-{seed}"))
    mmbench = _benchmark_items(n_per_language, random.Random(f"mmoe-synthetic-mmbench-{seed}"))
    paths = []
    for language in languages:
        code = mmmb_file_code(language)
        for name, items, circular in ((f"mmmb_{code}.tsv", mmmb, False), (f"mmbench_dev_{code}.tsv", mmbench, True)):
            path = out / name
            pd.DataFrame(_rows(items, language, circular)).to_csv(path, sep="\t", index=False)
            paths.append(path)
    return paths
