#!/usr/bin/env python3
"""Render the chat templates in tests/data/templates/ the way Hugging Face renders them.

For every case below this writes the rendered prompt to tests/data/templates/<case>.expected.txt
(or, for a case the template refuses, the message of the exception it raised) and the inputs of
all cases to tests/data/templates/cases.json, which the Rust test (tests/it/templates.rs)
replays through `ChatTemplate` and compares byte for byte.

Rendering goes through transformers' own `render_jinja_template` (the function behind
`tokenizer.apply_chat_template(..., tokenize=False)`), with the special tokens passed as template
variables like `apply_chat_template` passes `tokenizer.special_tokens_map`. Without transformers
installed, `--engine replica` (the fallback) rebuilds its jinja2 environment by hand.
`datetime.now()` is pinned to FIXED_NOW on both sides so that templates that print today's date
(`strftime_now`) are deterministic.

    python3 -m venv /tmp/venv-tmpl
    /tmp/venv-tmpl/bin/pip install 'transformers==5.24.0' 'jinja2==3.1.6'
    /tmp/venv-tmpl/bin/python scripts/dev/template-vectors.py
"""

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "templates"

# The clock that `strftime_now` reads, here and in the Rust test (cases.json carries it).
FIXED_NOW = datetime(2025, 3, 7, 9, 5, 3)

# system + user + assistant + user: non-ASCII text, quotes, a newline, and surrounding
# whitespace that some templates trim.
SYSTEM = "Tu es Mimi, une mascotte de bureau « toute douce ». Réponds brièvement."
CONVERSATION = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": "Salut ! Ça va ? 日本語も話せる？"},
    {"role": "assistant", "content": "Oui, ça va très bien 😊\nJe dis \"bonjour\" et 'こんにちは'."},
    {"role": "user", "content": "  Et la météo… demain ?\n"},
]
NO_SYSTEM = CONVERSATION[1:]
# An assistant turn with its reasoning inline, which reasoning models' templates cut out.
THINKING = CONVERSATION[:2] + [
    {"role": "assistant", "content": "<think>\nIl faut être bref…\n</think>\n\nOui, très bien !"},
    CONVERSATION[3],
]

# Passed as `tools=`/`documents=` (through Rust's render_with): exercises tojson on real templates.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Météo d'une ville <ville> & \"pays\"",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "Nom, ex. « Paris »"},
                "days": {"type": "integer", "minimum": 1, "maximum": 7.5},
                "units": {"type": "string", "enum": ["c", "f"], "nullable": None, "strict": True},
            },
            "required": ["city"],
        },
    },
}
DOCUMENTS = [{"doc_id": 1, "title": "Météo", "text": "Demain : soleil ☀, 21 °C."}]

# Special tokens as in each model's tokenizer_config.json; a token the model does not set is
# left out (as transformers leaves it out of special_tokens_map) and passed as "" to Rust.
FAMILIES = {
    "llama-3.1": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "llama-3.2": {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
    "qwen-2.5": {"eos_token": "<|im_end|>"},
    "qwen-3": {"eos_token": "<|im_end|>"},
    "gemma-2": {"bos_token": "<bos>", "eos_token": "<eos>"},
    "mistral-nemo": {"bos_token": "<s>", "eos_token": "</s>"},
    "mistral-small-3.2": {"bos_token": "<s>", "eos_token": "</s>"},
    "phi-3.5": {"bos_token": "<s>", "eos_token": "<|endoftext|>"},
    "phi-4": {"bos_token": "<|endoftext|>", "eos_token": "<|im_end|>"},
    "smollm2": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "smollm3": {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"},
    "deepseek-r1-distill": {
        "bos_token": "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
        "eos_token": "<\uff5cend\u2581of\u2581sentence\uff5c>",
    },
    "granite-3.3": {"bos_token": "<|end_of_text|>", "eos_token": "<|end_of_text|>"},
    "gpt-oss": {"bos_token": "<|startoftext|>", "eos_token": "<|return|>"},
}


def case(name, family, messages, add_generation_prompt=True, **extra):
    return {
        "name": name,
        "template": family,
        "messages": messages,
        "add_generation_prompt": add_generation_prompt,
        "extra": extra,
    }


CASES = [case(family, family, CONVERSATION) for family in FAMILIES if family != "gemma-2"]
CASES += [
    # Gemma refuses a system message: the main case goes without it, the refusal is its own case.
    case("gemma-2", "gemma-2", NO_SYSTEM),
    case("gemma-2-system-refused", "gemma-2", CONVERSATION),
    case("gemma-2-roles-refused", "gemma-2", [NO_SYSTEM[0], NO_SYSTEM[0]]),
    case("mistral-nemo-roles-refused", "mistral-nemo", [CONVERSATION[0], CONVERSATION[2]]),
    # Without a system message these templates write their own, with today's date.
    case("granite-3.3-no-system", "granite-3.3", NO_SYSTEM),
    case("llama-3.2-no-system", "llama-3.2", NO_SYSTEM),
    case("mistral-small-3.2-no-system", "mistral-small-3.2", NO_SYSTEM),
    case("smollm2-no-system", "smollm2", NO_SYSTEM),
    case("qwen-2.5-no-system", "qwen-2.5", NO_SYSTEM),
    # Template variables beyond the conversation.
    case("qwen-3-no-thinking", "qwen-3", CONVERSATION, enable_thinking=False),
    case("llama-3.1-date-string", "llama-3.1", CONVERSATION, date_string="01 Jan 2030"),
    # Without the generation prompt (some templates then append eos_token).
    case("llama-3.1-no-generation-prompt", "llama-3.1", CONVERSATION, add_generation_prompt=False),
    case("phi-3.5-no-generation-prompt", "phi-3.5", CONVERSATION, add_generation_prompt=False),
    case("qwen-3-no-generation-prompt", "qwen-3", CONVERSATION, add_generation_prompt=False),
    # Reasoning cut out of earlier assistant turns.
    case("qwen-3-thinking-history", "qwen-3", THINKING),
    case("deepseek-r1-distill-thinking-history", "deepseek-r1-distill", THINKING),
]
CASES += [
    case(f"{family}-tools", family, CONVERSATION, tools=[WEATHER_TOOL])
    for family in ["llama-3.1", "llama-3.2", "qwen-2.5", "qwen-3", "mistral-nemo", "mistral-small-3.2",
                   "granite-3.3", "smollm3", "gpt-oss"]
]
CASES += [case("granite-3.3-documents", "granite-3.3", NO_SYSTEM, documents=DOCUMENTS)]


class FixedDatetime(datetime):
    @classmethod
    def now(cls, tz=None):
        return FIXED_NOW


def transformers_renderer():
    import transformers.utils.chat_template_utils as ctu

    ctu.datetime = FixedDatetime  # what its strftime_now calls

    def render(template, messages, add_generation_prompt, variables):
        # As tokenizer.apply_chat_template(messages, tokenize=False, ...) does it.
        out = ctu.render_jinja_template(
            conversations=[messages],
            chat_template=template,
            add_generation_prompt=add_generation_prompt,
            **variables,
        )
        return out[0][0]

    import transformers

    return render, f"transformers {transformers.__version__}"


def replica_renderer():
    """transformers' _compile_jinja_template + render_jinja_template, without transformers."""
    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format):
        return FixedDatetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now

    def render(template, messages, add_generation_prompt, variables):
        context = {"messages": messages, "tools": None, "documents": None}
        context.update(add_generation_prompt=add_generation_prompt, **variables)
        return env.from_string(template).render(context)

    return render, f"jinja2 {jinja2.__version__} (replica of transformers' environment)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["auto", "transformers", "replica"], default="auto")
    args = parser.parse_args()
    if args.engine == "replica":
        render, engine = replica_renderer()
    else:
        try:
            render, engine = transformers_renderer()
        except ImportError:
            if args.engine == "transformers":
                raise
            render, engine = replica_renderer()
    print(f"rendering with {engine}", file=sys.stderr)

    import jinja2

    out_cases = []
    for c in CASES:
        template = (DATA / f"{c['template']}.jinja").read_text(encoding="utf-8")
        tokens = FAMILIES[c["template"]]
        variables = {**tokens, **c["extra"]}
        entry = {
            "name": c["name"],
            "template": f"{c['template']}.jinja",
            "bos_token": tokens.get("bos_token", ""),
            "eos_token": tokens.get("eos_token", ""),
            "messages": c["messages"],
            "add_generation_prompt": c["add_generation_prompt"],
            "extra": c["extra"],
            "now": FIXED_NOW.isoformat(),
        }
        try:
            rendered = render(template, c["messages"], c["add_generation_prompt"], variables)
        except jinja2.exceptions.TemplateError as err:
            if type(err) is not jinja2.exceptions.TemplateError:
                raise  # a syntax or undefined error is a bug here, not a refusal
            entry["error"] = str(err)
            print(f"{c['name']}: raises {str(err)!r}", file=sys.stderr)
        else:
            expected = f"{c['name']}.expected.txt"
            (DATA / expected).write_bytes(rendered.encode("utf-8"))
            entry["expected"] = expected
            print(f"{c['name']}: {len(rendered)} chars", file=sys.stderr)
        out_cases.append(entry)

    doc = {"generated_by": f"scripts/dev/template-vectors.py with {engine}", "cases": out_cases}
    (DATA / "cases.json").write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
