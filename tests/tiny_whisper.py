"""Build a tiny, randomly initialised CTranslate2 Whisper model for offline tests: the real
faster-whisper runs on it in the test suite, and no weights are shipped or downloaded.

Only numpy, ctranslate2 and tokenizers are needed (no torch / transformers, no
network).  The resulting directory can be loaded with

    faster_whisper.WhisperModel(str(directory), device="cpu", compute_type="float32")

and transcribes audio into garbage text (deterministic with temperature=0).

Layout constraints (imposed by CTranslate2 / faster-whisper, not by us):

* ``is_multilingual`` is not stored in the model; CTranslate2 infers it from the
  vocabulary. ctranslate2 4.8.5 (checked empirically): True iff the vocabulary
  contains an empty-string token "" (presumably the converted openai vocab has one).
  Older releases: ``len(vocab) == 51865`` (later ``>= 51865``). We satisfy both
  by keeping the real multilingual token *layout* (51865 ids, special ids as in
  openai/whisper) with a tiny model width. An English-only model would make
  faster-whisper silently replace language="fr" by "en" and skip language
  detection.
* The encoder position table has 1500 rows (not tried smaller): faster-whisper always
  feeds 3000 mel frames (30 s window) and the stride-2 conv halves that.
* Special token ids are the ones of openai/whisper (multilingual, 99 languages):
  50257 <|endoftext|>, 50258 <|startoftranscript|>, 50259..50357 languages,
  50358 <|translate|>, 50359 <|transcribe|>, 50360 <|startoflm|>,
  50361 <|startofprev|>, 50362 <|nocaptions|>, 50363 <|notimestamps|>,
  50364..51864 timestamps <|0.00|> .. <|30.00|>.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
from ctranslate2.specs import whisper_spec
from tokenizers import Tokenizer, decoders, models, pre_tokenizers

# Order of the language tokens in the multilingual Whisper vocabulary (99 languages).
WHISPER_LANGUAGES = [
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar",
    "sv", "it", "id", "hi", "fi", "vi", "he", "uk", "el", "ms", "cs", "ro", "da", "hu",
    "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk", "te", "fa",
    "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn",
    "bs", "kk", "sq", "sw", "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc",
    "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo", "ht", "ps", "tk", "nn",
    "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw",
    "su",
]

N_TEXT_TOKENS = 50257  # ids 0..50256 are ordinary (byte-level BPE) text tokens
N_TIMESTAMPS = 1501  # <|0.00|> .. <|30.00|>
VOCAB_SIZE = 51865  # multilingual Whisper layout (see module docstring)
N_MELS = 80
N_AUDIO_CTX = 1500  # 3000 mel frames / conv stride 2
N_TEXT_CTX = 448


def _bytes_to_unicode() -> list[str]:
    """GPT-2 byte -> printable unicode character table (the ByteLevel alphabet)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    table = dict(zip(bs, cs, strict=True))
    return [chr(table[b]) for b in range(256)]


def _build_vocabulary() -> tuple[list[str], list[str]]:
    """Return (all tokens in id order, special tokens)."""
    alphabet = _bytes_to_unicode()
    tokens = list(alphabet)  # ids 0..255: single bytes, so any text can be encoded
    # CTranslate2 >= 4.x (seen in 4.8.5) decides is_multilingual by the presence
    # of an empty-string token (the converted openai vocab has one); older
    # releases by len(vocab) == / >= 51865. Satisfy both.
    tokens.append("")
    # Filler text tokens up to id 50256: lowercase "words" with and without the
    # byte-level space marker "Ġ", so random output decodes to readable garbage.
    # They are never produced by encode() (no merges) but decode fine.
    letters = "abcdefghijklmnopqrstuvwxyz"
    seen = set(tokens)
    for length in itertools.count(1):
        for chars in itertools.product(letters, repeat=length):
            w = "".join(chars)
            for t in ("\u0120" + w, w):  # "\u0120" is "Ġ" (= a leading space)
                if t not in seen:
                    tokens.append(t)
                    seen.add(t)
            if len(tokens) >= N_TEXT_TOKENS:
                break
        if len(tokens) >= N_TEXT_TOKENS:
            break
    del tokens[N_TEXT_TOKENS:]
    special = ["<|endoftext|>", "<|startoftranscript|>"]
    special += [f"<|{lang}|>" for lang in WHISPER_LANGUAGES]
    special += [
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nocaptions|>",
        "<|notimestamps|>",
    ]
    timestamps = [f"<|{i * 0.02:.2f}|>" for i in range(N_TIMESTAMPS)]
    tokens += special + timestamps
    assert len(tokens) == VOCAB_SIZE, len(tokens)
    assert len(set(tokens)) == VOCAB_SIZE
    return tokens, special + timestamps


def _save_tokenizer(tokens: list[str], special: list[str], path: Path) -> None:
    vocab = {tok: i for i, tok in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    # Already in the model vocab, so they keep their ids; marks them as special
    # (never split by the pre-tokenizer, skipped by decode(skip_special_tokens)).
    tok.add_special_tokens(special)
    for t in ("<|endoftext|>", "<|fr|>", "<|notimestamps|>", "<|30.00|>"):
        assert tok.token_to_id(t) == vocab[t], t
    tok.save(str(path), pretty=False)


def make_tiny_whisper(
    directory: Path,
    *,
    d_model: int = 16,
    num_heads: int = 2,
    ffn_dim: int = 32,
    num_layers: int = 1,
    seed: int = 0,
    eot_after_tokens: int = 8,
    weights_dtype: str = "float16",
) -> Path:
    """Write a tiny random CTranslate2 Whisper model into ``directory``.

    eot_after_tokens: the decoder is rigged so that <|endoftext|> becomes the
      overwhelming argmax once the decoder position passes
      ``4 + eot_after_tokens`` (4 = <|startoftranscript|><|fr|><|transcribe|>
      <|notimestamps|>), so every generate() call stops after about that many
      text tokens instead of running to max_length (224 new tokens), also
      under temperature sampling.  Mechanism: hidden dimension 0 is reserved;
      the decoder position table is -3 there up to that position and then
      ramps up steeply; only the (tied) embedding row of <|endoftext|> is
      non-zero in dimension 0 (it points along dimension 0 only).
    weights_dtype: storage type in model.bin ("float16" halves the size; the
      model is still loadable with compute_type="float32").
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    tokens, special = _build_vocabulary()
    eot = tokens.index("<|endoftext|>")
    space = tokens.index(_bytes_to_unicode()[ord(" ")])  # "Ġ"

    def rand(*shape, scale=None):
        scale = (1.0 / np.sqrt(shape[-1])) if scale is None else scale
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def zeros(*shape):
        return np.zeros(shape, dtype=np.float32)

    def layer_norm(spec):
        spec.gamma = np.ones(d_model, dtype=np.float32)
        spec.beta = zeros(d_model)

    def linear(spec, out_dim, in_dim):
        spec.weight = rand(out_dim, in_dim)
        spec.bias = zeros(out_dim)

    def ffn(spec):
        layer_norm(spec.layer_norm)
        linear(spec.linear_0, ffn_dim, d_model)
        linear(spec.linear_1, d_model, ffn_dim)

    spec = whisper_spec.WhisperSpec(num_layers, num_heads, num_layers, num_heads)

    # Encoder: conv1 (k=3, stride 1) -> GELU -> conv2 (k=3, stride 2) -> GELU
    # -> + positions -> layers -> layer_norm
    enc = spec.encoder
    enc.conv1.weight = rand(d_model, N_MELS, 3, scale=1.0 / np.sqrt(N_MELS * 3))
    enc.conv1.bias = zeros(d_model)
    enc.conv2.weight = rand(d_model, d_model, 3, scale=1.0 / np.sqrt(d_model * 3))
    enc.conv2.bias = zeros(d_model)
    enc.position_encodings.encodings = rand(N_AUDIO_CTX, d_model, scale=0.1)
    layer_norm(enc.layer_norm)
    for layer in enc.layer:
        att = layer.self_attention
        layer_norm(att.layer_norm)
        linear(att.linear[0], 3 * d_model, d_model)  # fused q, k, v
        linear(att.linear[1], d_model, d_model)  # output
        ffn(layer.ffn)

    # Decoder (pre-norm, GELU, token embeddings tied with the output projection).
    dec = spec.decoder
    embeddings = rand(VOCAB_SIZE, d_model, scale=1.0)
    embeddings[:, 0] = 0.0  # hidden dim 0 is reserved for the <|endoftext|> switch
    embeddings[eot] = 0.0
    embeddings[eot, 0] = 8.0  # wins by a wide margin once dim 0 dominates
    dec.embeddings.weight = embeddings
    positions = rand(N_TEXT_CTX, d_model, scale=1.0)  # varied output per step
    start = 4 + eot_after_tokens
    positions[:start, 0] = -3.0  # <|endoftext|> logit strongly negative before...
    positions[start:, 0] = 8.0 * np.arange(1, N_TEXT_CTX - start + 1)  # ...and huge after
    dec.position_encodings.encodings = positions
    layer_norm(dec.layer_norm)
    for layer in dec.layer:
        att = layer.self_attention
        layer_norm(att.layer_norm)
        linear(att.linear[0], 3 * d_model, d_model)  # fused q, k, v
        linear(att.linear[1], d_model, d_model)
        cross = layer.attention
        layer_norm(cross.layer_norm)
        linear(cross.linear[0], d_model, d_model)  # q
        linear(cross.linear[1], 2 * d_model, d_model)  # fused k, v (on encoder output)
        linear(cross.linear[2], d_model, d_model)  # output
        ffn(layer.ffn)
    dec.projection.weight = embeddings  # tied -> stored once (alias) by optimize()

    spec.register_vocabulary(tokens)
    lang_ids = [tokens.index(f"<|{lang}|>") for lang in WHISPER_LANGUAGES]
    spec.config.suppress_ids = []  # only used by the C++ API when suppress_tokens=[-1]
    spec.config.suppress_ids_begin = [space, eot]
    spec.config.lang_ids = lang_ids  # required for detect_language
    spec.config.alignment_heads = [[num_layers // 2 if num_layers > 1 else 0, h]
                                   for h in range(num_heads)]  # for word_timestamps

    spec.validate()
    spec.optimize(quantization=weights_dtype)
    spec.save(str(directory))

    # ctranslate2 writes vocabulary.json indented and ASCII-escaped; compact it.
    (directory / "vocabulary.json").write_text(
        json.dumps(tokens, ensure_ascii=False, separators=(",", ":")), encoding="utf-8"
    )
    _save_tokenizer(tokens, special, directory / "tokenizer.json")
    # Read by faster-whisper's FeatureExtractor; these are the Whisper defaults.
    (directory / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "chunk_length": 30,
                "feature_size": N_MELS,
                "hop_length": 160,
                "n_fft": 400,
                "n_samples": 480000,
                "nb_max_frames": 3000,
                "sampling_rate": 16000,
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    return directory
