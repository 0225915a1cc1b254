"""The TSV loader: columns, pointer images, languages, and errors naming row and column."""

from __future__ import annotations

import pytest

from mmoe.eval import BenchmarkError, load_benchmark
from mmoe.eval.errors import ImageDataError
from mmoe.eval.mode import resolve_mode
from mmoe.eval.tsv import open_rows

from tests.eval.mmbench_files import OFFSET, QUESTIONS, mmbench_frame, png_b64


def test_loads_circular_file_with_pointer_images(mmbench_tsv):
    bench = load_benchmark(mmbench_tsv)
    assert bench.name == "MMBench_DEV_EN" and bench.language == "en" and resolve_mode("auto", bench).mode == "circular"
    assert len(bench) == sum(len(q["options"]) for q in QUESTIONS)
    assert bench.has_answers and bench.has_rotations
    rows = bench.by_index()
    first, copy = rows[7], rows[7 + OFFSET]
    assert copy.images == first.images and len(first.images) == 1
    assert first.load_images()[0].size == (24, 16)
    assert first.options == {"A": "Swimming", "B": "Running", "C": "Fishing", "D": "Cycling"}
    assert copy.options == {"A": "Cycling", "B": "Swimming", "C": "Running", "D": "Fishing"} and copy.answer == "D"
    assert copy.group == 7 and first.group == 7
    assert rows[12].options == {"A": "red", "B": "green", "C": "blue"} and rows[12].hint is None
    assert first.l2_category == "finegrained_perception (cross-instance)" and first.category == "action_recognition"
    assert first.split == "dev" and first.row == 3
    assert "image" not in bench.columns and "L2-category" in bench.columns


def test_lowercase_l2_and_test_split_without_answers(tsv_writer):
    frame = mmbench_frame(l2_column="l2-category", answers=False, split="test")
    bench = load_benchmark(tsv_writer(frame, "MMBench_TEST_CN.tsv"))
    assert not bench.has_answers and all(r.answer is None for r in bench.rows)
    assert bench.language == "zh" and bench.rows[0].l2_category == "attribute_reasoning"


@pytest.mark.parametrize(
    ("name", "lang"),
    [("mmmb_cn.tsv", "zh"), ("mmmb_ar.tsv", "ar"), ("mmbench_dev_tr.tsv", "tr"), ("MMBench_DEV_CN_V11.tsv", "zh"),
     ("CCBench.tsv", "zh"), ("MMBench_DEV_EN_V11.tsv", "en"), ("mmmb_pt.tsv", "pt"), ("mmmb_ru.tsv", "ru"),
     ("bench_chinese.tsv", "zh"), ("preds_no_answers.tsv", "en")],
)
def test_language_from_file_name(tsv_writer, name, lang):
    assert load_benchmark(tsv_writer(mmbench_frame(rotations=False), name)).language == lang


def test_language_flag_and_script_fallback(tsv_writer):
    frame = mmbench_frame(rotations=False)
    assert load_benchmark(tsv_writer(frame, "bench.tsv"), language="cn").language == "zh"
    frame["question"] = "图中的人在做什么？"
    assert load_benchmark(tsv_writer(frame, "bench2.tsv")).language == "zh"
    mmmb = load_benchmark(tsv_writer(frame, "mmmb_en.tsv"))
    assert resolve_mode("auto", mmmb).mode == "vanilla"


def test_multi_image_list_cell(tsv_writer):
    frame = mmbench_frame(rotations=False)
    frame.loc[0, "image"] = repr([png_b64((1, 2, 3)), png_b64((4, 5, 6), (8, 8))])
    bench = load_benchmark(tsv_writer(frame, "multi.tsv"))
    assert [im.size for im in bench.rows[0].load_images()] == [(24, 16), (8, 8)]


def _error(tsv_writer, frame, name="bad.tsv") -> str:
    with pytest.raises(BenchmarkError) as info:
        load_benchmark(tsv_writer(frame, name))
    return str(info.value)


def test_error_answer_letter_without_option(tsv_writer):
    frame = mmbench_frame()
    row = frame.index[frame["index"] == 12][0]
    frame.loc[row, "answer"] = "D"
    message = _error(tsv_writer, frame)
    assert f"row {row + 1} (index 12)" in message and "column 'answer'" in message and "'D'" in message


def test_error_missing_option_column(tsv_writer):
    message = _error(tsv_writer, mmbench_frame().drop(columns=["B"]))
    assert "column 'B'" in message and "missing option column" in message
    assert "no option columns" in _error(tsv_writer, mmbench_frame().drop(columns=list("ABCD")))


def test_error_bad_base64(tsv_writer):
    frame = mmbench_frame()
    frame.loc[2, "image"] = "@@not-base64@@" * 10
    message = _error(tsv_writer, frame)
    assert f"row 3 (index {frame.loc[2, 'index']})" in message and "column 'image'" in message and "base64" in message


def test_error_base64_that_is_not_an_image(tsv_writer):
    frame = mmbench_frame()
    frame.loc[0, "image"] = "aGVsbG8gd29ybGQh" * 8
    assert "not a readable image" in _error(tsv_writer, frame)


def test_error_pointer_to_missing_row(tsv_writer):
    frame = mmbench_frame()
    frame.loc[1, "image"] = "999"
    message = _error(tsv_writer, frame)
    assert "row 2 (index 1000241)" in message and "index 999" in message and "column 'image'" in message


def test_error_duplicate_index_and_non_integer(tsv_writer):
    frame = mmbench_frame()
    frame.loc[3, "index"] = frame.loc[0, "index"]
    assert "repeats row 1" in _error(tsv_writer, frame)
    frame["index"] = frame["index"].astype(str)
    frame.loc[3, "index"] = "x7"
    assert "row 4" in _error(tsv_writer, frame) and "not an integer" in _error(tsv_writer, frame)


def test_error_missing_question_column_and_file(tsv_writer, tmp_path):
    assert "missing required column 'question'" in _error(tsv_writer, mmbench_frame().drop(columns=["question"]))
    with pytest.raises(BenchmarkError, match="file not found"):
        load_benchmark(tmp_path / "nope.tsv")


def test_error_empty_answer_among_answers(tsv_writer):
    frame = mmbench_frame()
    frame.loc[5, "answer"] = ""
    assert "row 6" in _error(tsv_writer, frame) and "empty answer" in _error(tsv_writer, frame)


def test_open_rows_yields_each_bad_row_and_goes_on(tsv_writer):
    frame = mmbench_frame()
    frame.loc[0, "image"] = "@@not-base64@@" * 10
    frame.loc[2, "answer"] = "Z"
    rows = open_rows(tsv_writer(frame, "MMBench_DEV_EN.tsv"))
    items = list(rows)
    errors = [item for item in items if isinstance(item, BenchmarkError)]
    assert len(items) == len(frame) and rows.declared_language == "en"
    assert isinstance(errors[0], ImageDataError) and errors[0].row == 1 and errors[0].column == "image"
    assert errors[-1].row == 3 and errors[-1].column == "answer"
    with pytest.raises(ImageDataError, match="row 1"):
        rows.benchmark("MMBench_DEV_EN")


def test_text_cells_keep_whitespace_and_prompt_is_vlmevalkits(tsv_writer):
    """Cells are used as read (VLMEvalKit does not strip), so the prompt keeps a cell's trailing space."""
    from mmoe.eval.prompts import build_prompt

    frame = mmbench_frame(rotations=False)
    frame.loc[2, "question"] = "Which color dominates the image? "
    frame.loc[2, "A"] = "red "
    row = load_benchmark(tsv_writer(frame, "mmmb_en.tsv")).by_index()[12]
    assert row.question.endswith("image? ") and row.options["A"] == "red "
    assert build_prompt(row, "vlmevalkit") == (
        "Question: Which color dominates the image? \nOptions:\nA. red \nB. green\nC. blue\n"
        "Please select the correct answer from the options above. \n"
    )


def test_json_nulls_are_empty_cells_not_nan(tmp_path):
    """A 3-option row in JSON lines has ``"D": null``: no option D, and no ``nan`` hint."""
    import json

    path = tmp_path / "mmmb_en.jsonl"
    rows = [{"index": 1, "question": "Color?", "hint": None, "A": "red", "B": "green", "C": "blue", "D": None,
             "answer": "A", "image": png_b64((1, 2, 3))}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    row = load_benchmark(path).rows[0]
    assert row.options == {"A": "red", "B": "green", "C": "blue"} and row.hint is None


@pytest.mark.parametrize(("content", "message"), [(b"", "is empty"), (b"index\tquestion\tA\tanswer\n", "no rows")])
def test_empty_files_are_named(tmp_path, content, message):
    path = tmp_path / "MMBench_DEV_EN.tsv"
    path.write_bytes(content)
    with pytest.raises(BenchmarkError, match=f"MMBench_DEV_EN.tsv: .*{message}"):
        load_benchmark(path)
