"""Letters: Kazakh → Russian folding and Cyrillic → Latin transliteration.

Both the generator (to inject realistic variants) and resolution (to compare names) use these
tables, so a variant the generator makes is one the linker knows how to undo.
"""

from __future__ import annotations

#: Kazakh-specific letters and the Russian letters legacy systems write instead.
KAZAKH_TO_RUSSIAN = {
    "ә": "а", "ғ": "г", "қ": "к", "ң": "н", "ө": "о", "ұ": "у", "ү": "у", "һ": "х", "і": "и",
    "Ә": "А", "Ғ": "Г", "Қ": "К", "Ң": "Н", "Ө": "О", "Ұ": "У", "Ү": "У", "Һ": "Х", "І": "И",
}
FOLD_TABLE = str.maketrans(KAZAKH_TO_RUSSIAN)

#: Cyrillic → Latin as passport offices and banks write it (one common convention).
_CYR_LAT = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts", "ч": "ch", "ш": "sh",
    "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    "ә": "a", "ғ": "g", "қ": "k", "ң": "n", "ө": "o", "ұ": "u", "ү": "u", "һ": "h", "і": "i",
}
TRANSLIT_TABLE = str.maketrans(
    {**_CYR_LAT, **{k.upper(): v.capitalize() for k, v in _CYR_LAT.items()}}
)


def fold_kazakh(text: str) -> str:
    return text.translate(FOLD_TABLE)


def transliterate(text: str) -> str:
    return text.translate(TRANSLIT_TABLE)
