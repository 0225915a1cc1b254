"""MMBench/MMMB-layout benchmark frames and TSV files with real PNG images, shared by the eval tests
(imported as ``tests.eval.mmbench_files``; the fixtures built on them are in this folder's conftest)."""

from __future__ import annotations

import base64
import io
from collections import deque
from pathlib import Path

import pandas as pd
from PIL import Image

OFFSET = 1_000_000

# Base questions (pass 0). The first is the row MMBench's README prints (options are ours).
QUESTIONS = [
    dict(index=241, question="Identify the question that Madelyn and Tucker's experiment can best answer.",
         hint="The passage below describes an experiment. Madelyn and Tucker tested sleds on a hill.",
         options=["Does Madelyn's snowboard slide down a hill faster?", "Do steel runners or wooden runners slide faster?"],
         answer="B", category="identity_reasoning", l2="attribute_reasoning"),
    dict(index=7, question="What activity is the person in the image performing?", hint="The person is outdoors near water.",
         options=["Swimming", "Running", "Fishing", "Cycling"], answer="C", category="action_recognition",
         l2="finegrained_perception (cross-instance)"),
    dict(index=12, question="Which color dominates the image?", hint="",
         options=["red", "green", "blue"], answer="A", category="image_style", l2="coarse_perception"),
    dict(index=30, question="What is the text in the image?", hint="",
         options=["STOP", "GO", "WAIT", "EXIT"], answer="D", category="ocr",
         l2="finegrained_perception (instance-level)"),
]


def png_b64(color: tuple[int, int, int], size: tuple[int, int] = (24, 16)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def rotate(options: list[str], answer: str, k: int) -> tuple[list[str], str]:
    """Rotation k as VLMEvalKit's circular files hold it: deque.rotate(k) of the option texts (a negative
    k turns the other way, as VLMEvalKit's own ``circular`` tool does: b, c, d, a)."""
    d = deque(options)
    d.rotate(k)
    rotated = list(d)
    return rotated, "ABCDE"[rotated.index(options["ABCDE".index(answer)])]


def mmbench_frame(questions=QUESTIONS, rotations: bool = True, answers: bool = True, l2_column: str = "L2-category",
                  letters: str = "ABCD", split: str = "dev", direction: int = 1) -> pd.DataFrame:
    rows = []
    for qi, q in enumerate(questions):
        passes = range(len(q["options"])) if rotations else range(1)
        for k in passes:
            opts, ans = rotate(q["options"], q["answer"], direction * k)
            index = q["index"] + k * OFFSET
            row = {"index": index, "question": q["question"], "hint": q["hint"]}
            for j, letter in enumerate(letters):
                row[letter] = opts[j] if j < len(opts) else ""
            if answers:
                row["answer"] = ans
            row.update({"category": q["category"], "source": "synthetic", l2_column: q["l2"], "split": split})
            row["image"] = png_b64((40 * qi % 256, 90, 200)) if k == 0 else str(q["index"])
            rows.append(row)
    return pd.DataFrame(rows)


def write_tsv(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, sep="\t", index=False)
    return path


# index -> prediction for ``mmbench_frame()``. Answers per row are in the comments (rotations move the answer letter).
PREDICTIONS = {
    241: "B",  # B
    1000241: "答案是A",  # A
    7: "(C)",  # C
    1000007: "The answer is D.",  # D
    2000007: "Fishing",  # A (Fishing is option A in rotation 2)
    3000007: "Ответ: B",  # B
    12: "A",  # A
    1000012: "B。",  # B
    2000012: "I think it is A or C",  # C, but unmatched
    30: "Ｄ",  # D
    1000030: "الإجابة هي A",  # A
    2000030: "Resposta: B",  # B
    # 3000030 (answer C) has no prediction
}
