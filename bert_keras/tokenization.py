"""WordPiece tokenization with google-research/bert's (GB) normalisation, in TensorFlow ops.

GB's `BasicTokenizer` + `WordpieceTokenizer` (and Hugging Face's `BertTokenizer`, which
copies them) do, in order:

1. drop NUL, U+FFFD and control characters (categories Cc/Cf, except tab/newline/CR);
   map whitespace (tab, newline, CR, space, category Zs) to a space;
2. put spaces around CJK ideographs;
3. split on whitespace (Python's `str.split()`, which also splits on U+2028/U+2029);
4. when lower-casing: `str.lower()` (with Greek final sigma), NFD, drop Mn marks;
5. split on punctuation (ASCII non-alphanumerics and Unicode P*);
6. greedy longest-match WordPiece with `##`; a word longer than `max_chars_per_word`
   characters, or one without a match, becomes `[UNK]`.

`tensorflow_text.BertTokenizer(lower_case=True)` and
`FastBertTokenizer(lower_case_nfd_strip_accents=True)` do not match it (NFKC case folding:
`ß`->`ss`, `½`->`1⁄2`, `ﬁ`->`fi`, control characters kept as separators, ...). So steps 1, 2
and 4 run here as TF string ops on the whole string, and a case-preserving tf-text
tokenizer (no normalisation of its own) does steps 3, 5 and 6. Everything is a TF op from
`tensorflow` or `tensorflow_text`: it runs eagerly, in `tf.function`, inside `tf.data` and
in a SavedModel served without any project code.

Invalid UTF-8 is decoded with replacement characters which step 1 removes: the same as
GB's `text.decode("utf-8", "ignore")`. Empty strings give no pieces; a batch of zero
strings gives a ragged tensor with zero rows.

Known divergences of GB and Hugging Face, where we follow GB: HF also deletes unassigned
(Cn), private-use (Co) and surrogate characters, and turns U+000B/U+000C/U+0085 into spaces
(GB deletes them as Cc; so do we). GB's own `WordpieceTokenizer` uses 200 characters as the
long-word limit while HF uses 100; `max_chars_per_word` picks (default 100, HF's).

Dimension legend: B batch, W words, P pieces.
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

RESERVED_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_TOKEN, UNK_TOKEN, CLS_TOKEN, SEP_TOKEN, MASK_TOKEN = RESERVED_TOKENS
SUFFIX_INDICATOR = "##"

# GB's `_is_chinese_char` ranges (CJK Unified Ideographs and their extensions/compatibility
# blocks; not Hangul, Hiragana or Katakana), as an RE2 character-class body.
_CJK_CLASS = (
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}"
    r"\x{2B740}-\x{2B81F}\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}"
)
# GB's `_is_punctuation`: ASCII 33-47, 58-64, 91-96, 123-126, and Unicode P*.
_PUNCT_CLASS = r"!-/:-@\[-`{-~\p{P}"
# GB's whitespace (`_is_whitespace`) plus what Python's `str.split()` still splits on after
# control characters are gone (U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR).
_WHITESPACE_CLASS = r"\t\n\r\p{Zs}\x{2028}\x{2029}"
# Stand-in for a word longer than `max_chars_per_word`: a private-use character that is no
# whitespace or punctuation, so the tokenizer sees one word without a match -> [UNK].
_LONG_WORD_SENTINEL = "\ue000"

# Word splitting of a normalised string (only ' ' is whitespace by then): delimiters are
# spaces, punctuation and CJK characters; punctuation and CJK characters are kept as words.
_SPLIT_PATTERN = rf"( |[{_PUNCT_CLASS}]|[{_CJK_CLASS}])"
_KEEP_PATTERN = rf"([{_PUNCT_CLASS}]|[{_CJK_CLASS}])"
# The same split on an original (unnormalised) string, for offsets.
_RAW_SPLIT_PATTERN = rf"([{_WHITESPACE_CLASS}]|[{_PUNCT_CLASS}]|[{_CJK_CLASS}])"


def load_vocab(path: str) -> list[str]:
    """Reads a BERT vocab file (one token per line, id = line number) via tf.io.gfile.

    Raises ValueError naming the file (and line) when it is missing, empty, has an empty or
    duplicated token, or lacks one of RESERVED_TOKENS.
    """
    if not tf.io.gfile.exists(path):
        raise ValueError(f"Vocab file {path!r} does not exist (check --vocab_file).")
    with tf.io.gfile.GFile(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"Vocab file {path!r} is not valid UTF-8: {e}") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # The final newline.
    vocab: list[str] = []
    seen: dict[str, int] = {}
    for line_number, line in enumerate(lines, start=1):
        token = line.rstrip("\r").strip(" ")
        if not token:
            raise ValueError(f"{path}:{line_number}: empty token in vocab file.")
        if token in seen:
            raise ValueError(
                f"{path}:{line_number}: token {token!r} already on line {seen[token]}."
            )
        seen[token] = line_number
        vocab.append(token)
    if not vocab:
        raise ValueError(f"Vocab file {path!r} is empty.")
    check_vocab(vocab, source=path)
    return vocab


def check_vocab(vocab: Sequence[str], source: str = "vocabulary") -> None:
    """ValueError unless every reserved token is present."""
    missing = [t for t in RESERVED_TOKENS if t not in set(vocab)]
    if missing:
        raise ValueError(
            f"{source} lacks the reserved token(s) {missing}; a BERT vocab needs all of "
            f"{list(RESERVED_TOKENS)}."
        )


def _drop_invalid_utf8(strings: tf.Tensor) -> tf.Tensor:
    """Invalid UTF-8 sequences -> U+FFFD (removed with the control characters next).

    Transcoding is the slowest step of the normalisation, so it only runs when some string
    of the batch is not valid UTF-8: RE2's `.` never matches an invalid byte, and encoded
    surrogates (which RE2 accepts) are excluded explicitly.
    """

    def transcode():
        return tf.strings.unicode_transcode(
            strings,
            input_encoding="UTF-8",
            output_encoding="UTF-8",
            errors="replace",
            replacement_char=0xFFFD,
            replace_control_characters=False,
        )

    valid = tf.reduce_all(tf.strings.regex_full_match(strings, r"(?s)[^\x{D800}-\x{DFFF}]*"))
    return tf.cond(valid, lambda: tf.identity(strings), transcode)


def normalize_text(strings: tf.Tensor, lower_case: bool = True) -> tf.Tensor:
    """GB's text cleaning, CJK spacing and (if lower_case) lower + NFD + strip Mn.

    Args:
      strings: tf.string tensor of any shape (UTF-8; invalid bytes are dropped).
      lower_case: GB's `do_lower_case`.

    Returns:
      tf.string tensor of the same shape, with ' ' the only whitespace.
    """
    s = _drop_invalid_utf8(strings)
    s = tf.strings.regex_replace(s, f"[{_WHITESPACE_CLASS}]", " ")
    s = tf.strings.regex_replace(s, r"[\p{Cc}\p{Cf}\x{FFFD}]", "")
    s = tf.strings.regex_replace(s, f"[{_CJK_CLASS}]", r" \0 ")
    if lower_case:
        s = tf.strings.lower(s, encoding="utf-8")  # Full case mapping, final sigma included.
        s = tf_text.normalize_utf8(s, "NFD")
        s = tf.strings.regex_replace(s, r"\p{Mn}", "")
    return s


def _row_lengths_to_list(flat: np.ndarray, splits: np.ndarray) -> list[list[int]]:
    return [row.tolist() for row in np.split(flat, splits[1:-1])]


@keras.saving.register_keras_serializable(package="bert_keras")
class BertWordPieceTokenizer(keras.layers.Layer):
    """Strings -> WordPiece ids, the same ids as GB's `FullTokenizer` and HF's BertTokenizer.

    Args:
      vocabulary: list of tokens (id = index) or the path of a vocab file. Stored in the
        config as a list, so a `.keras` file carries it.
      lower_case: GB's `do_lower_case` (lower + NFD + strip accents).
      max_chars_per_word: words longer than this (in characters, after normalisation)
        become [UNK]. 100 as in Hugging Face; google-research/bert uses 200.

    Call: `strings (B,) tf.string -> tf.RaggedTensor (B, (P)) int32`.
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str,
        lower_case: bool = True,
        max_chars_per_word: int = 100,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "int32")
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        # Strings in, ragged out: keep Keras from converting or casting the arguments.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        if isinstance(vocabulary, str):
            vocabulary = load_vocab(vocabulary)
        vocabulary = list(vocabulary)
        check_vocab(vocabulary)
        if _LONG_WORD_SENTINEL in vocabulary:
            raise ValueError(
                "The vocabulary contains U+E000, which marks over-long words; remove it."
            )
        if max_chars_per_word < 1:
            raise ValueError(f"max_chars_per_word must be >= 1, got {max_chars_per_word}.")
        self._vocabulary = vocabulary
        self.lower_case = bool(lower_case)
        self.max_chars_per_word = int(max_chars_per_word)
        self._token_to_id = {t: i for i, t in enumerate(vocabulary)}
        # Every word handed to tf-text has at most max_chars_per_word chars (<= 4 bytes each);
        # the byte limit must never cut in first.
        max_bytes = 4 * self.max_chars_per_word + 4
        # Measured (benchmarks/tokenizer_throughput.py: 20k stdlib docstring lines, batches
        # of 256, 2 shared cores): our normalisation + FastBertTokenizer(no normalisation)
        # ~175k lines/s; + regex split + FastWordpieceTokenizer ~139k; + BertTokenizer(
        # lower_case=False) ~85k. So the flat path uses FastBertTokenizer, and the split path
        # only serves batches holding a whitespace token over max_chars_per_word
        # (FastBertTokenizer cannot count characters per word).
        self._fast_tokenizer = tf_text.FastBertTokenizer(
            vocab=vocabulary,
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=max_bytes,
            token_out_type=tf.int64,
            unknown_token=UNK_TOKEN,
            lower_case_nfd_strip_accents=False,
        )
        # Per-word WordPiece for tokenize_words / offsets: words are split by regex first.
        self._word_tokenizer = tf_text.FastWordpieceTokenizer(
            vocab=vocabulary,
            suffix_indicator=SUFFIX_INDICATOR,
            max_bytes_per_word=max_bytes,
            token_out_type=tf.int64,
            unknown_token=UNK_TOKEN,
            no_pretokenization=True,
        )
        self._batch_fns: dict[str, tf.types.experimental.GenericFunction] = {}
        self.built = True

    # --- Properties ---------------------------------------------------------------------

    @property
    def vocabulary(self) -> list[str]:
        return list(self._vocabulary)

    @property
    def vocab_size(self) -> int:
        return len(self._vocabulary)

    def token_to_id(self, token: str) -> int:
        return self._token_to_id[token]

    @property
    def pad_id(self) -> int:
        return self._token_to_id[PAD_TOKEN]

    @property
    def unk_id(self) -> int:
        return self._token_to_id[UNK_TOKEN]

    @property
    def cls_id(self) -> int:
        return self._token_to_id[CLS_TOKEN]

    @property
    def sep_id(self) -> int:
        return self._token_to_id[SEP_TOKEN]

    @property
    def mask_id(self) -> int:
        return self._token_to_id[MASK_TOKEN]

    # --- TF-op tokenization -------------------------------------------------------------

    def normalize(self, strings: tf.Tensor) -> tf.Tensor:
        return normalize_text(strings, self.lower_case)

    def _mark_long_words(self, words: tf.Tensor) -> tf.Tensor:
        """(N,) words -> (N,) words, those over max_chars_per_word replaced by the sentinel."""
        too_long = tf.strings.length(words, unit="UTF8_CHAR") > self.max_chars_per_word
        return tf.where(too_long, _LONG_WORD_SENTINEL, words)

    def _split_words(self, normalized: tf.Tensor) -> tf.RaggedTensor:
        """(B,) normalised strings -> (B, (W)) words, over-long ones marked."""
        words = tf_text.regex_split(normalized, _SPLIT_PATTERN, _KEEP_PATTERN)
        return words.with_flat_values(self._mark_long_words(words.flat_values))

    def _has_long_chunk(self, normalized: tf.Tensor) -> tf.Tensor:
        """Whether a space-separated chunk of `normalized` (B,) is longer than the word
        limit: a chunk no longer than it cannot hold a longer word, so only then do words
        need splitting and marking. One RE2 match (0.35 us a line) instead of splitting
        every line into chunks (3.3 us, measured on the default corpus)."""
        limit = self.max_chars_per_word
        if limit < 999:  # RE2 caps counted repetition at 1000.
            pattern = f"(?s).*[^ ]{{{limit + 1}}}.*"
            return tf.reduce_any(tf.strings.regex_full_match(normalized, pattern))
        chunks = tf.strings.split(normalized, sep=" ")  # (B, (S))
        return tf.reduce_any(tf.strings.length(chunks.flat_values, unit="UTF8_CHAR") > limit)

    def call(self, strings):
        """(B,) tf.string -> RaggedTensor (B, (P)) int32."""
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        normalized = self.normalize(strings)  # (B,)
        has_long = self._has_long_chunk(normalized)

        def fast():
            return self._fast_tokenizer.tokenize(normalized)  # (B, (P)) int64

        def split():
            words = self._split_words(normalized)  # (B, (W))
            pieces = self._word_tokenizer.tokenize(words.flat_values)  # (sum W, (P))
            return words.with_flat_values(pieces).merge_dims(1, 2)  # (B, (P))

        ids = tf.cond(has_long, split, fast)
        return tf.cast(ids, tf.int32)

    def tokenize_words(self, strings):
        """(B,) tf.string -> RaggedTensor (B, (W), (P)) int32: the pieces of each word."""
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        words = self._split_words(self.normalize(strings))  # (B, (W)) tf.string
        # Tokenizing the flat values keeps one op call per batch.
        pieces = self._word_tokenizer.tokenize(words.flat_values)  # (sum W, (P)) int64
        return words.with_flat_values(tf.cast(pieces, tf.int32))

    def tokenize_with_offsets(self, strings):
        """(B,) tf.string -> (ids, starts, ends), each RaggedTensor (B, (P)).

        ids are int32 and equal `call(strings)`. starts/ends are int64 byte offsets into the
        ORIGINAL (unnormalised) strings, `[start, end)`. Words are found on the original
        string; a piece's offsets are exact when normalising its word keeps the word's byte
        length (all ASCII and most text); otherwise each piece of that word gets the whole
        word's span. Control characters inside a word are inside its span.
        """
        strings = tf.convert_to_tensor(strings, dtype=tf.string)
        # Coarse words of the original: split on whitespace, punctuation and CJK characters.
        # regex_split stops at a NUL byte; U+0001 has the same length and is dropped too.
        safe = tf.strings.regex_replace(strings, r"\x00", "\x01")
        coarse, c_start, c_end = tf_text.regex_split_with_offsets(
            safe, _RAW_SPLIT_PATTERN, _KEEP_PATTERN
        )  # (B, (C))
        normalized = normalize_text(coarse.flat_values, self.lower_case)  # (C,)
        # Normalisation can create punctuation (U+1FEF -> '`') or spaces (CJK), or leave
        # nothing (a lone control character): split again on the normalised word.
        fine, f_start, f_end = tf_text.regex_split_with_offsets(
            normalized, _SPLIT_PATTERN, _KEEP_PATTERN
        )  # (C, (F))
        fine_words = fine.flat_values
        too_long = tf.strings.length(fine_words, unit="UTF8_CHAR") > self.max_chars_per_word
        fine_words = tf.where(too_long, _LONG_WORD_SENTINEL, fine_words)  # (sum F,)
        ids, p_start, p_end = self._word_tokenizer.tokenize_with_offsets(fine_words)
        # ids/p_start/p_end: (sum F, (P)); offsets relative to the fine word.
        piece_counts = ids.row_lengths()  # (sum F,)
        f_start_flat = tf.repeat(f_start.flat_values, piece_counts)  # (sum P,)
        f_end_flat = tf.repeat(f_end.flat_values, piece_counts)
        # Offsets in the normalised coarse word; a sentinel (an over-long word) spans the
        # whole fine word it replaced.
        long_per_piece = tf.repeat(too_long, piece_counts)
        n_start = tf.where(long_per_piece, f_start_flat, f_start_flat + p_start.flat_values)
        n_end = tf.where(long_per_piece, f_end_flat, f_start_flat + p_end.flat_values)
        # Map to the original: exact when the coarse word kept its byte length.
        pieces_in_coarse = tf.RaggedTensor.from_row_lengths(piece_counts, fine.row_lengths())
        per_coarse = tf.reduce_sum(pieces_in_coarse, axis=1)  # (C,) pieces per coarse word
        same_len = tf.equal(
            tf.cast(tf.strings.length(normalized), tf.int64),
            c_end.flat_values - c_start.flat_values,
        )
        cs = tf.repeat(c_start.flat_values, per_coarse)  # (sum P,)
        ce = tf.repeat(c_end.flat_values, per_coarse)
        exact = tf.repeat(same_len, per_coarse)
        start = tf.where(exact, cs + n_start, cs)
        end = tf.where(exact, cs + n_end, ce)
        # Rows: pieces per string = sum over its coarse words.
        per_string = tf.RaggedTensor.from_row_splits(per_coarse, coarse.row_splits)
        row_lengths = tf.reduce_sum(per_string, axis=1)  # (B,)
        ids_rt = tf.RaggedTensor.from_row_lengths(tf.cast(ids.flat_values, tf.int32), row_lengths)
        start_rt = tf.RaggedTensor.from_row_lengths(start, row_lengths)
        end_rt = tf.RaggedTensor.from_row_lengths(end, row_lengths)
        return ids_rt, start_rt, end_rt

    def detokenize(self, ids):
        """RaggedTensor or dense (B, (P)) int ids -> (B,) tf.string: tokens joined by spaces
        with `##` continuations glued on (GB's tokens, not the original text)."""
        vocab = tf.constant(self._vocabulary)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(tf.convert_to_tensor(ids))
        tokens = tf.gather(vocab, tf.cast(ids, tf.int32))  # (B, (P)) tf.string
        text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        return tf.strings.regex_replace(text, " " + SUFFIX_INDICATOR, "")

    # --- Python batch entries (for the Beam pipeline) -----------------------------------

    def _batch_fn(self, name: str):
        # One traced graph per method with a fixed signature: a batch call costs one
        # graph execution, never a retrace.
        if name not in self._batch_fns:
            spec = tf.TensorSpec([None], tf.string)
            if name == "ids":

                def fn(strings):
                    rt = self.call(strings)
                    return rt.flat_values, rt.row_splits

            else:

                def fn(strings):
                    rt = self.tokenize_words(strings)
                    return rt.flat_values, rt.values.row_splits, rt.row_splits

            self._batch_fns[name] = tf.function(fn, input_signature=[spec])
        return self._batch_fns[name]

    def encode_batch(self, lines: Sequence[str]) -> list[list[int]]:
        """list[str] -> list of piece-id lists (one graph call for the whole batch)."""
        if not lines:
            return []
        flat, splits = self._batch_fn("ids")(tf.constant(list(lines), dtype=tf.string))
        return _row_lengths_to_list(flat.numpy(), splits.numpy())

    def encode_words_batch(self, lines: Sequence[str]) -> list[list[list[int]]]:
        """list[str] -> per line, per word, the piece ids (for whole-word masking)."""
        if not lines:
            return []
        flat, word_splits, line_splits = self._batch_fn("words")(
            tf.constant(list(lines), dtype=tf.string)
        )
        words = _row_lengths_to_list(flat.numpy(), word_splits.numpy())
        bounds = line_splits.numpy()
        return [words[bounds[i] : bounds[i + 1]] for i in range(len(bounds) - 1)]

    def ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        return [self._vocabulary[i] for i in ids]

    # --- Config -------------------------------------------------------------------------

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "vocabulary": list(self._vocabulary),
                "lower_case": self.lower_case,
                "max_chars_per_word": self.max_chars_per_word,
            }
        )
        return config
