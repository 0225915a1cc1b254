"""Hand-written question and answer text for the synthetic shapes task, per language.

Every attribute has one answer word per language; every question kind has two phrasings. The
answer words fit the questions grammatically (e.g. Russian asks "Какой цвет у фигуры?" so the
masculine colour name agrees with "цвет").
"""

from __future__ import annotations

COLOURS = ("red", "green", "blue", "yellow", "black", "purple")
SHAPES = ("circle", "square", "triangle", "star")
POSITIONS = ("left", "right", "top", "bottom")
COUNTS = (1, 2, 3, 4)
KINDS = ("color", "shape", "count", "position")

WORDS: dict[str, dict[str, dict[str, str]]] = {
    "en": {
        "color": dict(zip(COLOURS, ("red", "green", "blue", "yellow", "black", "purple"))),
        "shape": dict(zip(SHAPES, ("circle", "square", "triangle", "star"))),
        "position": dict(zip(POSITIONS, ("left", "right", "top", "bottom"))),
    },
    "zh": {
        "color": dict(zip(COLOURS, ("红色", "绿色", "蓝色", "黄色", "黑色", "紫色"))),
        "shape": dict(zip(SHAPES, ("圆形", "正方形", "三角形", "星形"))),
        "position": dict(zip(POSITIONS, ("左边", "右边", "上方", "下方"))),
    },
    "pt": {
        "color": dict(zip(COLOURS, ("vermelho", "verde", "azul", "amarelo", "preto", "roxo"))),
        "shape": dict(zip(SHAPES, ("círculo", "quadrado", "triângulo", "estrela"))),
        "position": dict(zip(POSITIONS, ("à esquerda", "à direita", "em cima", "embaixo"))),
    },
    "ar": {
        "color": dict(zip(COLOURS, ("أحمر", "أخضر", "أزرق", "أصفر", "أسود", "بنفسجي"))),
        "shape": dict(zip(SHAPES, ("دائرة", "مربع", "مثلث", "نجمة"))),
        "position": dict(zip(POSITIONS, ("في اليسار", "في اليمين", "في الأعلى", "في الأسفل"))),
    },
    "tr": {
        "color": dict(zip(COLOURS, ("kırmızı", "yeşil", "mavi", "sarı", "siyah", "mor"))),
        "shape": dict(zip(SHAPES, ("daire", "kare", "üçgen", "yıldız"))),
        "position": dict(zip(POSITIONS, ("solda", "sağda", "üstte", "altta"))),
    },
    "ru": {
        "color": dict(zip(COLOURS, ("красный", "зелёный", "синий", "жёлтый", "чёрный", "фиолетовый"))),
        "shape": dict(zip(SHAPES, ("круг", "квадрат", "треугольник", "звезда"))),
        "position": dict(zip(POSITIONS, ("слева", "справа", "сверху", "снизу"))),
    },
}

QUESTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "en": {
        "color": ("What colour is the shape?", "Which colour is the shape in the image?"),
        "shape": ("What shape is shown in the image?", "Which shape is in the picture?"),
        "count": ("How many shapes are in the image?", "How many shapes can you see?"),
        "position": ("Where is the shape in the image?", "In which part of the image is the shape?"),
    },
    "zh": {
        "color": ("图中的图形是什么颜色？", "这个图形是什么颜色的？"),
        "shape": ("图中显示的是什么形状？", "图片里是哪种形状？"),
        "count": ("图中有几个图形？", "你能看到多少个图形？"),
        "position": ("图形在图片的什么位置？", "图形位于图片的哪个部分？"),
    },
    "pt": {
        "color": ("De que cor é a forma?", "Qual é a cor da forma na imagem?"),
        "shape": ("Que forma aparece na imagem?", "Qual é a forma mostrada na imagem?"),
        "count": ("Quantas formas há na imagem?", "Quantas formas você consegue ver?"),
        "position": ("Onde está a forma na imagem?", "Em que parte da imagem está a forma?"),
    },
    "ar": {
        "color": ("ما لون الشكل؟", "ما لون الشكل في الصورة؟"),
        "shape": ("ما الشكل الظاهر في الصورة؟", "أي شكل يوجد في الصورة؟"),
        "count": ("كم عدد الأشكال في الصورة؟", "كم شكلًا يمكنك أن ترى؟"),
        "position": ("أين يقع الشكل في الصورة؟", "في أي جزء من الصورة يوجد الشكل؟"),
    },
    "tr": {
        "color": ("Şeklin rengi ne?", "Resimdeki şekil hangi renkte?"),
        "shape": ("Resimde hangi şekil görünüyor?", "Resimdeki şekil nedir?"),
        "count": ("Resimde kaç şekil var?", "Kaç şekil görüyorsunuz?"),
        "position": ("Şekil resmin neresinde?", "Şekil resmin hangi bölümünde yer alıyor?"),
    },
    "ru": {
        "color": ("Какой цвет у фигуры?", "Какой цвет у фигуры на изображении?"),
        "shape": ("Какая фигура изображена на картинке?", "Что это за фигура?"),
        "count": ("Сколько фигур на изображении?", "Сколько фигур вы видите?"),
        "position": ("Где находится фигура на изображении?", "Где расположена фигура?"),
    },
}

SHORT_ANSWER = {
    "en": "Answer with a single word or number.",
    "zh": "请用一个词或一个数字回答。",
    "pt": "Responda com uma única palavra ou número.",
    "ar": "أجب بكلمة واحدة أو برقم.",
    "tr": "Tek bir kelime ya da sayıyla cevap verin.",
    "ru": "Ответьте одним словом или числом.",
}


# The "sentence" answer format: the same question asks for a full sentence, which wraps the answer word.
FULL_SENTENCE = {
    "en": "Answer with a full sentence.",
    "zh": "请用完整的句子回答。",
    "pt": "Responda com uma frase completa.",
    "ar": "أجب بجملة كاملة.",
    "tr": "Tam bir cümleyle cevap verin.",
    "ru": "Ответьте полным предложением.",
}
SENTENCE = {
    "en": "The answer is {}.",
    "zh": "答案是{}。",
    "pt": "A resposta é {}.",
    "ar": "الإجابة هي {}.",
    "tr": "Doğru cevap: {}.",
    "ru": "Правильный ответ: {}.",
}
SHORT_FORMATS = ("word", "sentence")


def answer_text(language: str, kind: str, value: str | int) -> str:
    """The answer word for an attribute value (counts are digits in every language)."""
    if kind == "count":
        return str(value)
    return WORDS[language][kind][str(value)]
