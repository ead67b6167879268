"""Dataset engineering: exact and near-duplicate detection (MinHash + LSH), quality filters, n-gram
decontamination, self-instruct synthetic data, and a small downstream score to measure each step.

One module per concern: text (normalize, exact duplicates), minhash (shingles, Jaccard, MinHash, LSH), quality,
decontamination, bigram (the downstream score), pipeline (the steps in order) and synthetic (self-instruct).
Every public name is importable from here, as before: `from llmlab import data_engineering as de`.
"""

from llmlab.data_engineering.bigram import BigramLM
from llmlab.data_engineering.decontamination import contaminated, ngram_overlap, train_rows_overlapping, word_ngrams
from llmlab.data_engineering.minhash import (
    char_shingles,
    drop_near_duplicates,
    jaccard,
    lsh_candidate_probability,
    lsh_candidates,
    minhash_from_hashes,
    minhash_jaccard,
    minhash_permutations,
    minhash_signature,
    near_duplicates,
    sha1_hash32,
)
from llmlab.data_engineering.pipeline import Step, clean_corpus
from llmlab.data_engineering.quality import (
    STOPWORDS,
    QualityRules,
    alnum_share,
    duplicate_ngram_share,
    english_share,
    quality_problem,
)
from llmlab.data_engineering.synthetic import (
    SELF_INSTRUCT_HEADER,
    filter_synthetic,
    generate_synthetic,
    parse_synthetic,
    self_instruct_prompt,
    verify_sum,
)
from llmlab.data_engineering.text import content_hash, exact_duplicates, normalize, words
