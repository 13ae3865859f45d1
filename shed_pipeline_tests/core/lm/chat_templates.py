"""Chat templates for the tiny tokenizer (it has none), shared by the tests of prompts."""

# A small chat template (the tiny tokenizer has none): one tagged line per turn.
CHAT = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# One that refuses a conversation starting with an assistant turn, as some models' templates do.
STRICT = (
    "{% if messages[0]['role'] == 'assistant' %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}" + CHAT
)
