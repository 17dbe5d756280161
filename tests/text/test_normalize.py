from __future__ import annotations

from moroccan_eval.text import normalize, tokenize


def test_arabic_normalisation_removes_diacritics_tatweel_and_variants() -> None:
    assert normalize("إِسْتِرْجَاعُ الأمـــوال") == normalize("استرجاع الاموال")
    assert normalize("فاتورة") == "فاتوره"
    assert normalize("مستشفى") == "مستشفي"
    assert normalize("\u200fالسلام\u200e") == "السلام"


def test_latin_case_accents_and_separators() -> None:
    assert normalize("Échange_Produit") == "echange produit"
    assert normalize("payment-problem") == "payment problem"


def test_arabizi_digits_are_letters_and_eastern_digits_become_ascii() -> None:
    assert normalize("3afak, 9olli") == "3afak 9olli"
    assert normalize("٠٦١٢") == "0612"


def test_tifinagh_is_kept() -> None:
    assert tokenize("ⴰⵣⵓⵍ  ⴼⵍⵍⴰⵡⵏ!") == ["ⴰⵣⵓⵍ", "ⴼⵍⵍⴰⵡⵏ"]
