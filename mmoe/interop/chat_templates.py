"""Jinja chat templates that render exactly as mmoe's built-in templates do, for exported Hugging Face folders.

An exported tokenizer and processor carry the template the model was trained with, so
``apply_chat_template`` in transformers produces the same text (default system prompt included) and
a round trip back into mmoe answers the same way. Message content may be a string (with ``<image>``
placeholders) or a list of ``{"type": "image"}`` / ``{"type": "text", "text": ...}`` items; an image
item renders as the image token followed by a newline, mmoe's placeholder convention.
"""

from __future__ import annotations

from mmoe.tokenization.templates import CHATML_SYSTEM, LLAVA_V1_SYSTEM

# Every literal is emitted through {{ }} so Jinja's trim_blocks/lstrip_blocks (as transformers sets them) change nothing.
_CONTENT = (
    "{% macro content(message) %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ IMAGE + '\\n' }}{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
)

_CHATML = (
    "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\n' + SYSTEM + '<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}{{ content(message) }}{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

_LLAVA_V1 = (
    "{{ bos_token if bos_token else '' }}"
    "{% if messages[0]['role'] == 'system' %}{{ content(messages[0]) + ' ' }}{% else %}{{ SYSTEM + ' ' }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ 'USER: ' }}{{ content(message) }}{{ ' ' }}"
    "{% elif message['role'] == 'assistant' %}{{ 'ASSISTANT: ' }}{{ content(message) }}{{ eos_token if eos_token else '' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

_PLAIN = (
    "{{ bos_token if bos_token else '' }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ IMAGE * (content(message).split(IMAGE) | length - 1) }}"
    "{% elif message['role'] == 'assistant' %}{{ content(message) + '\\n' }}{% endif %}"
    "{% endfor %}"
)

_BODIES = {"chatml": (_CHATML, CHATML_SYSTEM), "llava_v1": (_LLAVA_V1, LLAVA_V1_SYSTEM), "plain": (_PLAIN, "")}


def _quoted(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def jinja_template(template: str, image_token: str) -> str:
    """The Jinja equivalent of mmoe's ``template`` (``chatml``, ``llava_v1`` or ``plain``)."""
    if template not in _BODIES:
        raise ValueError(f"no Jinja equivalent for template {template!r}; expected one of {', '.join(_BODIES)}")
    body, system = _BODIES[template]
    header = f"{{% set IMAGE = {_quoted(image_token)} %}}{{% set SYSTEM = {_quoted(system)} %}}"
    return header + _CONTENT + body
