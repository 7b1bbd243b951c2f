#!/usr/bin/env python3
"""Writes qwen2_style/tokenizer.json: a tiny hand-picked byte-level BPE with Qwen2's configuration
(NFC normalizer, Split regex + ByteLevel pre-tokenizer, pair-form merges, <|im_start|>-style added tokens).
Run once; the output is committed. Standard library only."""
import json, os

def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))

B2U = bytes_to_unicode()

vocab = {}
for b, c in B2U.items():  # GPT-2 order: printable bytes first, as in real vocabularies
    vocab[c] = len(vocab)

words = [" the", "he", " t", "in", " a", "er", "on", " s", "re", "at", "en", " w", "or", "ll", " c", "is",
         " is", " of", " and", "ing", " to", "'s", " hello", "hello", " world", "  ", "\n\n", "    ",
         "你好", "世界", " café", "ü", "中文", "😀", " émoji", "!!", "...", " Hello", "Hello", "HTTP",
         "\t", " 2", "的", "<|"]
merges = []

def add(word):
    """Adds merges building `word` left to right from its bytes (each prefix becomes a token)."""
    toks = [B2U[b] for b in word.encode("utf-8")]
    left = toks[0]
    for t in toks[1:]:
        new = left + t
        if [left, t] not in merges:
            merges.append([left, t])
        if new not in vocab:
            vocab[new] = len(vocab)
        left = new

for w in words:
    add(w)

added = []
for name in ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]:
    added.append({"id": len(vocab) + len(added), "content": name, "single_word": False, "lstrip": False,
                  "rstrip": False, "normalized": False, "special": True})

pattern = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
tok = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": added,
    "normalizer": {"type": "NFC"},
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
    "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False},
    "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
              "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
              "vocab": vocab, "merges": merges},
}
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "qwen2_style", "tokenizer.json"), "w", encoding="utf-8") as f:
    json.dump(tok, f, ensure_ascii=False, indent=1)
    f.write("\n")
with open(os.path.join(here, "qwen2_style", "tokenizer_config.json"), "w", encoding="utf-8") as f:
    json.dump({"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, f, indent=1)
    f.write("\n")
