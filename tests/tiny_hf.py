"""Build tiny, randomly initialised Hugging Face causal LMs for offline tests: the real
transformers + torch run on them in the test suite, and no weights are shipped or downloaded.

The tokenizer is byte-level BPE with no merges (every UTF-8 byte one token, so Arabic,
Tifinagh and French text all encode) plus a few special tokens, built with ``tokenizers``
and saved by transformers' ``save_pretrained`` beside the model, so the folder loads with
``AutoTokenizer`` / ``AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)``.
The answers are garbage, deterministic under greedy decoding.
"""

from __future__ import annotations

from pathlib import Path

#: A ChatML-like template (what many instruction-tuned models use), small enough to read.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}")
SPECIAL = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"]


def _tokenizer(chat_template: str | None):  # type: ignore[no-untyped-def]
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(SPECIAL + alphabet)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.add_special_tokens(SPECIAL)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>",
                                   eos_token="</s>", pad_token="<pad>")
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast, len(vocab)


def make_tiny_llm(directory: Path, *, kind: str = "llama", chat_template: bool = True,
                  seed: int = 0, context: int = 4096) -> Path:
    """Write a tiny random causal LM (``llama`` or ``gpt2``) and its tokenizer into
    ``directory``; with ``chat_template`` the tokenizer carries :data:`CHAT_TEMPLATE`."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    directory = Path(directory)
    tokenizer, vocab_size = _tokenizer(CHAT_TEMPLATE if chat_template else None)
    torch.manual_seed(seed)
    ids = {"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(
            vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
            tie_word_embeddings=False, initializer_range=0.5, **ids))
    elif kind == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2,
                                           n_head=4, n_positions=context, initializer_range=0.5,
                                           tie_word_embeddings=False, **ids))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
