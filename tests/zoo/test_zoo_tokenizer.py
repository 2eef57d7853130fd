"""The demo tokenizer: one token per caption word, spans, special tokens, round trip."""

import json
import os

import pytest
from transformers import CLIPTokenizerFast

from captum_bilinear.zoo import DEMO_MODEL_DIR, VOCABULARY, SceneGenerator, build_vocabulary, hard_negative


@pytest.fixture(scope="module")
def tokenizer():
    return CLIPTokenizerFast.from_pretrained(DEMO_MODEL_DIR)


def test_every_caption_word_is_one_token(tokenizer):
    for word in VOCABULARY:
        ids = tokenizer(word, add_special_tokens=False)["input_ids"]
        assert tokenizer.convert_ids_to_tokens(ids) == [word + "</w>"], word


def test_special_tokens_and_model_config_agree(tokenizer):
    with open(os.path.join(DEMO_MODEL_DIR, "config.json")) as f:
        text_config = json.load(f)["text_config"]
    assert tokenizer.bos_token == "<|startoftext|>" and tokenizer.eos_token == "<|endoftext|>"
    assert tokenizer.pad_token == "<|pad|>"
    assert text_config["eos_token_id"] == tokenizer.eos_token_id == len(tokenizer) - 1
    assert text_config["bos_token_id"] == tokenizer.bos_token_id
    assert text_config["pad_token_id"] == tokenizer.pad_token_id != tokenizer.eos_token_id
    assert text_config["eos_token_id"] != 2  # CLIP's legacy pooling (argmax of ids) is not used
    assert text_config["vocab_size"] == len(tokenizer)
    assert tokenizer.model_max_length == text_config["max_position_embeddings"]


def test_shipped_files_are_consistent_and_building_is_deterministic(tokenizer):
    with open(os.path.join(DEMO_MODEL_DIR, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    assert vocab == tokenizer.get_vocab()
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert [t for t, i in sorted(vocab.items(), key=lambda x: x[1])[-3:]] == [
        "<|pad|>",
        "<|startoftext|>",
        "<|endoftext|>",
    ]
    with open(os.path.join(DEMO_MODEL_DIR, "merges.txt"), encoding="utf-8") as f:
        merges = [tuple(line.split()) for line in f if not line.startswith("#version")]
    assert all(a + b in vocab for a, b in merges)
    assert build_vocabulary(VOCABULARY) == build_vocabulary(VOCABULARY)
    built, _ = build_vocabulary(VOCABULARY)
    assert {w + "</w>" for w in VOCABULARY} <= set(built) & set(vocab)


def test_spans_decode_to_object_words_and_round_trip(tokenizer):
    scenes = SceneGenerator(21).scenes(60)
    scenes += [hard_negative(s, seed=i) for i, s in enumerate(scenes)]
    for scene in scenes:
        ids = tokenizer(scene.caption)["input_ids"]
        assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
        assert len(ids) == len(scene.words) + 2
        assert tokenizer.convert_ids_to_tokens(ids[1:-1]) == [w + "</w>" for w in scene.words]
        for obj in scene.objects:
            start, stop = obj.span
            assert tokenizer.decode(ids[start:stop]) == " ".join(obj.words)
        # round trip (the decoder puts a space before commas)
        decoded = tokenizer.decode(ids, skip_special_tokens=True)
        assert decoded.replace(" ,", ",") == scene.caption


def test_batches_pad_with_pad_token_and_any_text_tokenizes(tokenizer):
    batch = tokenizer(["a red circle", "there is a large blue square left of a small star"], padding=True)
    short = batch["input_ids"][0]
    assert short[:5] == tokenizer("a red circle")["input_ids"]
    assert set(short[5:]) == {tokenizer.pad_token_id} and batch["attention_mask"][0][5:] == [0] * (len(short) - 5)
    # words outside the vocabulary fall apart into pieces, never into the EOS / unknown id
    ids = tokenizer("a zebra, juggling 42 émus!")["input_ids"]
    assert ids.count(tokenizer.eos_token_id) == 1 and ids[-1] == tokenizer.eos_token_id
