"""The packaged sources: named datasets (not paths) extracted from the bigbench==1.0.0 archive into
one Parquet file each in the cache, on first use. `natural_instructions` is the default source,
`bigbench_chat` bigbench's own generative tasks as chat rows."""

NATURAL_INSTRUCTIONS = "natural-instructions"
BIGBENCH_CHAT = "bigbench-chat"  # bigbench's generative tasks as chat rows (packaged/bigbench_chat.py)
PACKAGED_SOURCES = (NATURAL_INSTRUCTIONS, BIGBENCH_CHAT)  # names, not paths: extracted from the bigbench archive
# Rows a packaged source gives by default: what the README's first command runs, evaluation
# included (fine-tunes of the target LM), in under 10 minutes on a 2-core CPU. `--rows` takes more.
DEFAULT_ROWS = 1_500
