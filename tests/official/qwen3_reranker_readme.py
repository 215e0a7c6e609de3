# Vendored UNCHANGED from github.com/QwenLM/Qwen3-Embedding, commit f4ad0c434c0e3534494e26a4a6bdfd8ab1431968
# (2025-06-13), README.md, section "Reranker Model" > "Transformers Usage" (the python code block):
# its imports and functions (README lines 214-244) as code, and its set-up of the token ids, max_length,
# prefix and suffix (README lines 251-259) as the string README_SETUP, byte for byte. Only the two
# hub-loading lines (tokenizer = ..., model = ...) and the example pairs are left to the driver,
# run_qwen3_reranker.py, which sets `tokenizer` and `model` from a local directory and executes
# README_SETUP in this module's namespace, as the README runs it.
# Licence: Apache-2.0, as the Qwen3-Reranker model cards declare (license: apache-2.0). The repository
# has no LICENSE file at that commit (nor a NOTICE file), so no licence text is copied here.
# Do not edit below this line.
# Requires transformers>=4.51.0
import torch
from transformers import AutoModel, AutoTokenizer, AutoModelForCausalLM

def format_instruction(instruction, query, doc):
    if instruction is None:
        instruction = 'Given a web search query, retrieve relevant passages that answer the query'
    output = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".format(instruction=instruction,query=query, doc=doc)
    return output

def process_inputs(pairs):
    inputs = tokenizer(
        pairs, padding=False, truncation='longest_first',
        return_attention_mask=False, max_length=max_length - len(prefix_tokens) - len(suffix_tokens)
    )
    for i, ele in enumerate(inputs['input_ids']):
        inputs['input_ids'][i] = prefix_tokens + ele + suffix_tokens
    inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
    for key in inputs:
        inputs[key] = inputs[key].to(model.device)
    return inputs

@torch.no_grad()
def compute_logits(inputs, **kwargs):
    batch_scores = model(**inputs).logits[:, -1, :]
    true_vector = batch_scores[:, token_true_id]
    false_vector = batch_scores[:, token_false_id]
    batch_scores = torch.stack([false_vector, true_vector], dim=1)
    batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
    scores = batch_scores[:, 1].exp().tolist()
    return scores


README_SETUP = r"""

token_false_id = tokenizer.convert_tokens_to_ids("no")
token_true_id = tokenizer.convert_tokens_to_ids("yes")
max_length = 8192

prefix = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"
suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
prefix_tokens = tokenizer.encode(prefix, add_special_tokens=False)
suffix_tokens = tokenizer.encode(suffix, add_special_tokens=False)
"""
