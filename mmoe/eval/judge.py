"""An optional LLM judge behind an OpenAI-compatible ``/chat/completions`` endpoint (off by default).

It is asked only about predictions the rule-based extractor could not match. Its reply goes through
the same extractor; "Z" or anything unmatched stays unmatched (never a random letter).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from mmoe.errors import MMoEError
from mmoe.eval.benchmark import MCQRow
from mmoe.eval.extract import extract

INSTRUCTION = (
    "You map a model's free-form answer to one option of a multiple-choice question. "
    "Reply with one uppercase letter: the option the answer chooses, or Z if it chooses none, several, "
    "or cannot be understood. Reply with the letter only."
)


class JudgeError(MMoEError, RuntimeError):
    """The judge endpoint could not be reached or answered nonsense."""


@dataclass
class OpenAIJudge:
    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    retries: int = 2

    @classmethod
    def from_env(cls, base_url: str, model: str, key_env: str = "OPENAI_API_KEY") -> "OpenAIJudge":
        return cls(base_url, model, os.environ.get(key_env))

    def messages(self, row: MCQRow, prediction: str) -> list[dict[str, str]]:
        options = "\n".join(f"{letter}. {text}" for letter, text in row.options.items())
        user = f"Question: {row.question}\nOptions:\n{options}\nModel answer: {prediction}\nYour reply:"
        return [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": user}]

    def request(self, row: MCQRow, prediction: str) -> urllib.request.Request:
        body = {"model": self.model, "messages": self.messages(row, prediction), "temperature": 0, "max_tokens": 8}
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        url = self.base_url.rstrip("/") + "/chat/completions"
        return urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")

    def __call__(self, row: MCQRow, prediction: str) -> str | None:
        error: Exception | None = None
        for _ in range(self.retries + 1):
            try:
                with urllib.request.urlopen(self.request(row, prediction), timeout=self.timeout) as response:
                    content = json.loads(response.read())["choices"][0]["message"]["content"]
                break
            except (urllib.error.URLError, TimeoutError, ValueError, KeyError, IndexError, TypeError) as exc:
                error = exc
        else:
            raise JudgeError(f"judge at {self.base_url} failed for index {row.index}: {error}")
        return extract(content or "", row.options).letter
