"""Find the chosen option letter in a free-form model answer, deterministically and without an LLM.

The text is first NFKC-normalised (full-width ``Ｂ``/``（Ｂ）``/``：`` become ASCII) and markdown
emphasis (``*``, backticks, ``#``) is dropped. Rules are then tried in this order; the first that
yields a letter naming one of the row's options wins:

1. ``letter``: the whole answer is one letter, maybe with punctuation or brackets: ``B``, ``(B)``,
   ``B.``, ``B:``, ``B。``, ``[B]``; also Arabic ``ب`` (أ ب ج د = A B C D) and Cyrillic look-alikes.
2. ``leading``: the answer starts with a letter and a delimiter (``B. Running``, ``(B) Running``,
   ``B) ...``, ``B: ...``, ``B、跑步``, ``B - ...``) or with the letter and that option's own text.
3. ``phrase``: an answer phrase then a letter: "the answer is B", "Answer: (B)", "答案是B", "答案：B",
   "选B", "Resposta: B", "A resposta correta é B", "الإجابة هي B", "Ответ: B", "Cevap: B", ...
   When several appear, the last one wins (a final answer follows the reasoning).
4. ``option_word``: option words before a letter ("option B", "选项B", "opção B", "вариант B",
   "seçenek B", "الخيار B"); used only when all such mentions name the same letter.
5. ``standalone``: exactly one distinct option letter stands alone in the text (not inside a word;
   CJK neighbours are allowed, as in ``B是正确的``). A sentence-initial ``A`` followed by a lower-case
   word that is not a verb ("A person is ...") is read as an article.
6. ``text``: the answer equals one option's text, or contains exactly one option's text (a match
   inside a longer matching option does not count); skipped for answers longer than twice the total
   option text, as VLMEvalKit does.

Anything else is unmatched (``letter is None``) and scores as wrong.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

RULE_SET = "mmoe-2"  # named in every summary; bumped whenever a rule changes what it reads
RULES = ("letter", "leading", "phrase", "option_word", "standalone", "text")
UNMATCHED_RULES = ("empty", "api_failure", "none")

_ALT_LETTERS = {"أ": "A", "ا": "A", "ب": "B", "ج": "C", "د": "D", "А": "A", "В": "B", "С": "C", "Е": "E"}
_WORD_CHARS = r"A-Za-z0-9\u0400-\u04FF\u0600-\u06FF"
_ANY_LETTER = rf"(?<![{_WORD_CHARS}])(?P<letter>[A-Z]|[{''.join(_ALT_LETTERS)}])(?![{_WORD_CHARS}])"
_OPEN = r"[\(\[\{<]?\s*"

_ANSWER_WORDS = (
    r"answer|correct\s+(?:option|choice)|right\s+(?:option|choice)|best\s+(?:option|choice)"
    r"|i\s+(?:choose|pick|select)|答案|正确选项|应选|选择|选(?!项)"
    r"|resposta|alternativa\s+correta|opção\s+correta|respuesta|réponse|antwort"
    r"|الإجابة|الاجابة|الجواب|ответ|правильный\s+вариант|cevap|yanıt|doğru\s+seçenek|doğru\s+şık"
)
_FILLERS = (
    r"is|was|would\s+be|should\s+be|will\s+be|must\s+be|correct|final|the|option|choice|letter"
    r"|é|seria|a|o|letra|opção|alternativa|correta|certa|şık|şıkkı|seçenek|olan|şudur|budur"
    r"|является|это|вариант|буква|هي|هو|الخيار|الصحيحة"
)
_CJK_FILLERS = r"应该是|应为|应该|是|为|為|选项|选择"
_GAP = rf"(?:\s|[:：=\-—–]|{_CJK_FILLERS}|(?i:{_FILLERS})(?![A-Za-z]))*"
_PHRASE = re.compile(rf"(?i:{_ANSWER_WORDS}){_GAP}{_OPEN}{_ANY_LETTER}")
_OPTION_WORDS = re.compile(
    rf"(?i:option|choice|alternative|opção|opcao|alternativa|вариант|seçenek|şık|الخيار|خيار|选项)\s*[:：]?\s*{_OPEN}{_ANY_LETTER}"
)
_BARE = re.compile(rf"^[\W_]*{_ANY_LETTER}[\W_]*$")
_LEADING = re.compile(r"^[\s\(\[\{]*(?P<letter>[A-Z])(?:\s*[\)\]\}.:、。,，]|\s+[-–—]\s)")
_LEADING_WORD = re.compile(r"^(?P<letter>[A-Z])\s+(?P<rest>.+)$", re.S)
_STANDALONE = re.compile(r"(?<![A-Za-z0-9'’])[A-Z](?![A-Za-z0-9'’])")
_ARTICLE_NEXT = re.compile(r"\s+([a-z][a-z]*)")
_VERBS = {"is", "was", "seems", "appears", "would", "should", "must", "could", "can", "will", "or", "and", "and/or"}
_FAILURE = "Failed to obtain answer via API"


@dataclass(frozen=True)
class Extraction:
    """The letter found (``None`` when unmatched) and the rule that found it."""

    letter: str | None
    rule: str


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[*`#]+", "", text).strip()


def _letter(match: re.Match) -> str:
    found = match.group("letter")
    return _ALT_LETTERS.get(found, found)


def extract(prediction: str | None, options: dict[str, str]) -> Extraction:
    """The option ``prediction`` chooses among ``options`` (letter -> text), by the documented rules."""
    if prediction is None or not str(prediction).strip():
        return Extraction(None, "empty")
    if _FAILURE in prediction:
        return Extraction(None, "api_failure")
    text = normalise(str(prediction))
    for rule, finder in _FINDERS:
        letter = finder(text, options)
        if letter is not None and letter in options:
            return Extraction(letter, rule)
    return Extraction(None, "none")


def _bare(text: str, options: dict[str, str]) -> str | None:
    match = _BARE.match(text)
    return _letter(match) if match else None


def _leading(text: str, options: dict[str, str]) -> str | None:
    match = _LEADING.match(text)
    if match:
        return match.group("letter")
    match = _LEADING_WORD.match(text)
    if match and match.group("letter") in options:
        rest = _fold(match.group("rest"))
        if rest.startswith(_fold(options[match.group("letter")])):
            return match.group("letter")
    return None


def _phrase(text: str, options: dict[str, str]) -> str | None:
    found = [_letter(m) for m in _PHRASE.finditer(text)]
    found = [letter for letter in found if letter in options]
    return found[-1] if found else None


def _option_word(text: str, options: dict[str, str]) -> str | None:
    found = {_letter(m) for m in _OPTION_WORDS.finditer(text)} & set(options)
    return found.pop() if len(found) == 1 else None


def _standalone(text: str, options: dict[str, str]) -> str | None:
    found = set()
    for match in _STANDALONE.finditer(text):
        letter = match.group()
        if letter not in options or (letter == "A" and _is_article(text, match)):
            continue
        found.add(letter)
    return found.pop() if len(found) == 1 else None


def _is_article(text: str, match: re.Match) -> bool:
    before = text[: match.start()].rstrip()
    sentence_start = not before or before[-1] in ".!?。！？\n:"
    following = _ARTICLE_NEXT.match(text, match.end())
    return sentence_start and following is not None and following.group(1) not in _VERBS


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text)
    return text.strip(" .,:;!?。，：；！？'\"()[]")


def _occurrences(haystack: str, needle: str) -> list[tuple[int, int]]:
    spans = []
    start = haystack.find(needle)
    while start >= 0 and needle:
        end = start + len(needle)
        left_ok = not (needle[0].isascii() and needle[0].isalnum()) or start == 0 or not haystack[start - 1].isalnum()
        right_ok = not (needle[-1].isascii() and needle[-1].isalnum()) or end == len(haystack) or not haystack[end].isalnum()
        if left_ok and right_ok:
            spans.append((start, end))
        start = haystack.find(needle, start + 1)
    return spans


def _text(text: str, options: dict[str, str]) -> str | None:
    answer = _fold(text)
    folded = {letter: _fold(option) for letter, option in options.items() if _fold(option)}
    exact = [letter for letter, option in folded.items() if option == answer]
    if len(exact) == 1:
        return exact[0]
    if len(answer) > 2 * sum(len(o) for o in folded.values()):
        return None
    spans = {letter: _occurrences(answer, option) for letter, option in folded.items()}
    spans = {letter: s for letter, s in spans.items() if s}

    def inside_other(letter: str) -> bool:
        other = [span for key, found in spans.items() if key != letter for span in found]
        return all(any(a <= start and end <= b and b - a > end - start for a, b in other) for start, end in spans[letter])

    kept = [letter for letter in spans if not inside_other(letter)]
    return kept[0] if len(kept) == 1 else None


_FINDERS = (
    ("letter", _bare),
    ("leading", _leading),
    ("phrase", _phrase),
    ("option_word", _option_word),
    ("standalone", _standalone),
    ("text", _text),
)
