"""The demo world's tokenizer: a fast ``transformers`` CLIP tokenizer over a small vocabulary.

The vocabulary is laid out like OpenAI CLIP's: the 256 byte-level characters, the same
with the end-of-word marker ``</w>``, then one entry per BPE merge, then the special
tokens. The merges are learned (plain deterministic BPE) on the caption
vocabulary :data:`~captum_bilinear.zoo.scenes.VOCABULARY`, so every caption word is one
token; any other text still tokenizes (into smaller pieces) without unknown tokens.

Special tokens: ``<|pad|>`` (padding and the text reference of the attribution
methods), ``<|startoftext|>``, ``<|endoftext|>`` (the EOS token CLIP pools at, the
largest id). Unlike OpenAI CLIP, padding is *not* the EOS token.

Load it with ``CLIPTokenizerFast.from_pretrained`` (in transformers 5 the same class as
``CLIPTokenizer``; in 4.x ``CLIPTokenizer`` is the slow Python tokenizer, which has no
character offsets for caption spans).
"""

import json
import os
from typing import Dict, List, Optional, Sequence, Tuple

PAD_TOKEN = "<|pad|>"
BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
MODEL_MAX_LENGTH = 32


def _bytes_to_unicode() -> Dict[int, str]:
    """OpenAI CLIP's / GPT-2's reversible byte -> printable character map."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def _learn_merges(words: Sequence[str]) -> List[Tuple[str, str]]:
    """Byte-pair merges until every word is one symbol: repeatedly merge the most
    frequent adjacent pair (ties: the alphabetically first), deterministic."""
    byte_map = _bytes_to_unicode()
    sequences = []
    for word in sorted(set(words)):
        chars = [byte_map[b] for b in word.encode("utf-8")]
        chars[-1] += "</w>"
        sequences.append(chars)
    merges: List[Tuple[str, str]] = []
    while True:
        counts: Dict[Tuple[str, str], int] = {}
        for seq in sequences:
            for pair in zip(seq, seq[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            return merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        merged = best[0] + best[1]
        for k, seq in enumerate(sequences):
            out, i = [], 0
            while i < len(seq):
                if i + 1 < len(seq) and (seq[i], seq[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(seq[i])
                    i += 1
            sequences[k] = out


def build_vocabulary(words: Sequence[str]) -> Tuple[Dict[str, int], List[Tuple[str, str]]]:
    """Vocabulary and merges for a CLIP tokenizer in which each of ``words`` is one token.

    Args:
        words: lower-case ASCII words (and punctuation) that must each become one token.

    Returns:
        ``(vocab, merges)``: token -> id and the ordered list of merges. Ids: the 256
        byte-level characters, the same with ``</w>``, the merged tokens, then
        ``<|pad|>``, ``<|startoftext|>``, ``<|endoftext|>`` (the last three ids).

    Example:
        >>> vocab, merges = build_vocabulary(["red", "circle"])
        >>> "red</w>" in vocab and "circle</w>" in vocab
        True
        >>> vocab["<|endoftext|>"] == len(vocab) - 1
        True
    """
    merges = _learn_merges(words)
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    seen = set(tokens)
    for left, right in merges:
        merged = left + right
        if merged not in seen:
            tokens.append(merged)
            seen.add(merged)
    tokens += [PAD_TOKEN, BOS_TOKEN, EOS_TOKEN]
    return {t: i for i, t in enumerate(tokens)}, merges


def write_tokenizer_files(directory: str, words: Optional[Sequence[str]] = None) -> None:
    """Write ``vocab.json``, ``merges.txt`` and the tokenizer configs into ``directory``
    (what ``CLIPTokenizerFast.from_pretrained(directory)`` reads).

    Args:
        directory: target folder (created if needed).
        words: the words that must be single tokens (default: the scene vocabulary).

    Returns:
        None; the folder then holds ``vocab.json``, ``merges.txt``, ``tokenizer.json``
        and ``tokenizer_config.json``.

    Example:
        >>> import tempfile
        >>> from transformers import CLIPTokenizerFast
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     write_tokenizer_files(folder)
        ...     tokenizer = CLIPTokenizerFast.from_pretrained(folder)
        >>> tokenizer.convert_ids_to_tokens(tokenizer("a red circle")["input_ids"])
        ['<|startoftext|>', 'a</w>', 'red</w>', 'circle</w>', '<|endoftext|>']
        >>> tokenizer.pad_token, tokenizer.pad_token_id != tokenizer.eos_token_id
        ('<|pad|>', True)
    """
    if words is None:
        from captum_bilinear.zoo.scenes import VOCABULARY

        words = VOCABULARY
    vocab, merges = build_vocabulary(words)
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False, indent=0)
        f.write("\n")
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for left, right in merges:
            f.write(f"{left} {right}\n")
    _fast_tokenizer(directory, vocab, merges).save_pretrained(directory)


def _fast_tokenizer(directory: str, vocab: Dict[str, int], merges: List[Tuple[str, str]]):
    """A fast CLIP tokenizer over ``vocab`` / ``merges`` (already written to ``directory``)."""
    import transformers
    from transformers import CLIPTokenizerFast  # type: ignore[attr-defined]  # a lazy alias in transformers 5, absent from its type stubs

    if int(transformers.__version__.split(".")[0]) >= 5:
        # transformers 5 builds the tokenizer from the vocabulary itself (it ignores file paths)
        return CLIPTokenizerFast(
            vocab=vocab, merges=[tuple(m) for m in merges], pad_token=PAD_TOKEN, model_max_length=MODEL_MAX_LENGTH
        )
    return CLIPTokenizerFast(
        vocab_file=os.path.join(directory, "vocab.json"),
        merges_file=os.path.join(directory, "merges.txt"),
        pad_token=PAD_TOKEN,
        model_max_length=MODEL_MAX_LENGTH,
    )
