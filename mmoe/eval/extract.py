"""Find the chosen option letter in a free-form model answer, deterministically and without an LLM.

The text is first NFKC-normalised (full-width ``Ｂ``/``（Ｂ）``/``：`` become ASCII) and markdown
emphasis (``*``, backticks, ``#``) is dropped. Rules are then tried in this order; the first that
yields a letter naming one of the row's options wins, and ``several`` stops the search unmatched:

1. ``letter``: the whole answer is one letter, maybe with punctuation or brackets: ``B``, ``(B)``,
   ``B.``, ``B:``, ``B。``, ``[B]``; also Arabic ``ب`` (أ ب ج د = A B C D) and Cyrillic look-alikes.
2. ``phrase``: an answer phrase then a letter: "the answer is B" (also ``b.``, a lower-case letter
   closed by punctuation), "Answer: (B)", "答案是B", "选B", "Resposta: B", "A resposta correta é B",
   "الإجابة هي B", "Ответ: B", "Cevap: B", "정답은 B", "答えはB", ... When several appear, the last
   one wins: a conclusion follows the reasoning ("D. Cycling is wrong; the answer is B." is B).
3. ``several``: the answer names two or more options as its choice (``A, B``, ``B、C``,
   ``(B) or (C)``, ``A. Swimming or B. Running``, "答案是A或B"): unmatched.
4. ``leading``: the answer starts with a letter and a delimiter (``B. Running``, ``(B) Running``,
   ``B) ...``, ``B: ...``, ``B、跑步``, ``B - ...``) or with the letter and that option's own text;
   not when the answer walks through the options line by line (lines opening with other letters).
5. ``option_word``: option words before a letter ("option B", "选项B", "opção B", "вариант B",
   "seçenek B", "الخيار B", "보기 B", "選択肢B"); used only when all such mentions name the same letter.
6. ``standalone``: exactly one distinct option letter stands alone in the text, between spaces,
   punctuation or CJK characters (so not inside a word, nor among stray bytes such as ``\ufffdD\ufffd``).
   A sentence-initial ``A`` followed by a lower-case word that is not a verb ("A person is ...") is
   read as an article.
7. ``text``: the answer equals one option's text, or contains exactly one option's text (a match
   inside a longer matching option does not count); skipped for answers longer than twice the total
   option text (as VLMEvalKit does) and longer than 64 characters.

Cyrillic look-alike letters (А В С Е) count only when no Cyrillic word follows: in "Ответ: В воде"
the ``В`` is the preposition "in". Anything else is unmatched (``letter is None``) and scores as wrong.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

RULE_SET = "mmoe-2"  # named in every summary; bumped whenever a rule changes what it reads
RULES = ("letter", "phrase", "leading", "option_word", "standalone", "text")
UNMATCHED_RULES = ("empty", "api_failure", "several", "none")

_ALT_LETTERS = {"أ": "A", "ا": "A", "ب": "B", "ج": "C", "د": "D", "А": "A", "В": "B", "С": "C", "Е": "E"}
_WORD_CHARS = r"A-Za-z0-9\u0400-\u04FF\u0600-\u06FF"
_CYRILLIC = "\u0400-\u04FF"
_ARABIC_LETTERS = "أابجد"
_ANY_LETTER = (
    rf"(?<![{_WORD_CHARS}])(?P<letter>[A-Z]|[{_ARABIC_LETTERS}]|[АВСЕ](?!\s+[{_CYRILLIC}]))(?![{_WORD_CHARS}])"
)
# characters that may stand next to a standalone letter: spaces, punctuation (no apostrophe), CJK
_EDGE = (
    r"\s!\"#$%&()*+,\-./:;<=>?@\[\\\]^`{|}~"
    "。，、；：！？（）【】「」『』《》…—–“”«»،؛؟\u3000-\u303f\u4e00-\u9fff\u3040-\u30ff\uac00-\ud7af"
)
_PUNCT = r"\s!\"#$%&()*+,\-./:;<=>?@\[\\\]^_`{|}~。，、；：！？（）【】「」『』《》…—–“”«»،؛؟"
_OPEN = r"[\(\[\{<]?\s*"

_ANSWER_WORDS = (
    r"answer|correct\s+(?:option|choice)|right\s+(?:option|choice)|best\s+(?:option|choice)"
    r"|i\s+(?:choose|pick|select)|答案|正确选项|应选|选择|选(?!项)|정답|답변|답|答え|正解|回答"
    r"|resposta|alternativa\s+correta|opção\s+correta|respuesta|réponse|antwort"
    r"|الإجابة|الاجابة|الجواب|ответ|правильный\s+вариант|cevap|yanıt|doğru\s+seçenek|doğru\s+şık"
)
_FILLERS = (
    r"is|was|would\s+be|should\s+be|will\s+be|must\s+be|correct|final|the|option|choice|letter"
    r"|é|seria|a|o|letra|opção|alternativa|correta|certa|şık|şıkkı|seçenek|olan|şudur|budur"
    r"|является|это|вариант|буква|هي|هو|الخيار|الصحيحة"
)
_CJK_FILLERS = r"应该是|应为|应该|是|为|為|选项|选择|은|는|이|は|が|선택지|보기|選択肢"
_GAP = rf"(?:\s|[:：=\-—–]|{_CJK_FILLERS}|(?i:{_FILLERS})(?![A-Za-z]))*"
_LOWER = r"(?<![A-Za-z])(?P<lower>[a-e])(?=\s*[.)\]。!,，;:]|\s*$)"
_PHRASE = re.compile(rf"(?i:{_ANSWER_WORDS}){_GAP}{_OPEN}(?:{_ANY_LETTER}|{_LOWER})")
_OPTION_WORDS = re.compile(
    rf"(?i:option|choice|alternative|opção|opcao|alternativa|вариант|seçenek|şık|الخيار|خيار|选项|보기|선택지|옵션|選択肢)"
    rf"\s*[:：]?\s*{_OPEN}{_ANY_LETTER}"
)
_BARE = re.compile(rf"^[{_PUNCT}]*{_ANY_LETTER}[{_PUNCT}]*$")
_LEADING = re.compile(r"^[\s\(\[\{]*(?P<letter>[A-Z])(?:\s*[\)\]\}.:、。,，]|\s+[-–—]\s)")
_LEADING_WORD = re.compile(r"^(?P<letter>[A-Z])\s+(?P<rest>.+)$", re.S)
_STANDALONE = re.compile(rf"(?:(?<=[{_EDGE}])|^)[A-Z](?=[{_EDGE}]|$)")
_CONJUNCTION = (
    r"(?:,|、|،|/|&|\+|(?i:or|and|ou|e|y|или|и|veya|ya\s+da|ve|أو|و|또는|혹은|와|과|または|か|と)(?![A-Za-z])|或者|或是|或|和|与|及)"
)
_LINE_LETTER = re.compile(r"^[\s(\[]*([A-Z])\s*[.):、]", re.M)
_ARTICLE_NEXT = re.compile(r"\s+([a-z][a-z]*)")
_VERBS = {"is", "was", "seems", "appears", "would", "should", "must", "could", "can", "will", "or", "and", "and/or"}
_FAILURE = "Failed to obtain answer via API"
TEXT_MATCH_MIN_CHARS = 64  # the option-text rule reads answers up to this long even when the options are short


@dataclass(frozen=True)
class Extraction:
    """The letter found (``None`` when unmatched) and the rule that found it."""

    letter: str | None
    rule: str


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return re.sub(r"[*`#]+", "", text).strip()


def _letter(match: re.Match) -> str:
    found = match.group("letter") or match.group("lower").upper()
    return _ALT_LETTERS.get(found, found)


class _Several(Exception):
    """Raised by a rule that finds the answer naming several options."""


def extract(prediction: str | None, options: dict[str, str]) -> Extraction:
    """The option ``prediction`` chooses among ``options`` (letter -> text), by the documented rules."""
    if prediction is None or not str(prediction).strip():
        return Extraction(None, "empty")
    if _FAILURE in prediction:
        return Extraction(None, "api_failure")
    text = normalise(str(prediction))
    for rule, finder in _FINDERS:
        try:
            letter = finder(text, options)
        except _Several:
            return Extraction(None, "several")
        if letter is not None and letter in options:
            return Extraction(letter, rule)
    return Extraction(None, "none")


def _several_at(text: str, start: int, options: dict[str, str]) -> bool:
    """Whether the option letter at ``start`` is joined to another option letter by "or", "and", ",", "、"..."""
    letter = text[start]
    own = _fold(options.get(letter, ""))
    rest = text[start + 1 :]
    rest = re.sub(r"^[.)\]:]?\s*", "", rest)
    if own and _fold(rest[: len(own) + 2]).startswith(own):
        rest = rest[len(own) :]
    match = re.match(rf"[\s.)\]]*{_CONJUNCTION}\s*[(\[]?\s*([A-Z])(?![A-Za-z0-9'’])", rest)
    return bool(match) and match.group(1) in options and match.group(1) != letter


def _several(text: str, options: dict[str, str]) -> None:
    for match in _STANDALONE.finditer(text):
        if match.group() in options and _several_at(text, match.start(), options):
            raise _Several


def _bare(text: str, options: dict[str, str]) -> str | None:
    match = _BARE.match(text)
    return _letter(match) if match else None


def _leading(text: str, options: dict[str, str]) -> str | None:
    if len(set(_LINE_LETTER.findall(text)) & set(options)) >= 2:
        return None  # a walk through the options, one per line
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
    found = [m for m in _PHRASE.finditer(text) if _letter(m) in options]
    if not found:
        return None
    last = found[-1]
    start = last.start("letter") if last.group("letter") else last.start("lower")
    if text[start] in options and _several_at(text, start, options):
        raise _Several
    return _letter(last)


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
    if len(answer) > max(2 * sum(len(o) for o in folded.values()), TEXT_MATCH_MIN_CHARS):
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
    ("phrase", _phrase),
    ("several", _several),
    ("leading", _leading),
    ("option_word", _option_word),
    ("standalone", _standalone),
    ("text", _text),
)
