"""The optional judge: off by default; requests go to a tiny local OpenAI-compatible server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from mmoe.eval import load_benchmark
from mmoe.eval.circular import prepare
from mmoe.eval.judge import JudgeError, OpenAIJudge
from mmoe.eval.score import score

from tests.eval.mmbench_files import mmbench_frame


class _Handler(BaseHTTPRequestHandler):
    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        text = body["messages"][-1]["content"]
        reply = "B" if "the second one" in text else "Z"
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.requests = []
    httpd = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


def test_judge_only_sees_unmatched_rows(server, tsv_writer):
    bench, choice = prepare(load_benchmark(tsv_writer(mmbench_frame(rotations=False), "mmmb_en.tsv")))
    mode = choice.mode
    preds = {241: "the second one", 7: "C", 12: "no idea", 30: "D"}
    without = score(bench, preds, mode).summary()
    assert without["overall"] == 0.5 and without["n_unmatched"] == 2
    judge = OpenAIJudge(server, "judge-model", api_key="secret")
    with_judge = score(bench, preds, mode, judge).summary()
    assert with_judge["overall"] == 0.75 and with_judge["n_unmatched"] == 1
    assert with_judge["extraction_rules"]["judge"] == 1
    assert len(_Handler.requests) == 2
    sent = _Handler.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer secret"
    assert sent["body"]["model"] == "judge-model" and sent["body"]["temperature"] == 0


def test_unreachable_judge_is_a_clear_error(tsv_writer):
    bench, choice = prepare(load_benchmark(tsv_writer(mmbench_frame(rotations=False), "mmmb_en.tsv")))
    mode = choice.mode
    judge = OpenAIJudge("http://127.0.0.1:9/v1", "m", retries=0, timeout=2)
    with pytest.raises(JudgeError, match="judge at http://127.0.0.1:9/v1 failed"):
        score(bench, {241: "hmm"}, mode, judge)


def test_judge_is_off_by_default():
    from mmoe.cli import build_parser

    args = build_parser().parse_args(["eval", "score", "--predictions", "p.tsv", "--out", "o"])
    assert args.judge_url is None
